/**
 * What every part of the operator CLI shares: its configuration (where the project is and the key to reach it),
 * the database connection, the error type that carries an exit status, the command-line argument parsers and
 * the formatting of everything it prints.
 *
 * Invariants:
 * - Configuration is read once, validated, and fails with exit status 2 and a message naming the variable.
 * - Local defaults apply only when SUPABASE_URL is on loopback: then the URLs and the service key come from what
 *   the local stack published in `<LOCAL_STATE_DIR or .local>/stack.env` (local-stack/main.ts writes it when its
 *   gateway starts). The CLI imports nothing from local-stack/; against a hosted project nothing is defaulted.
 * - Every value that comes from data (object names, errors, reasons, table cells) reaches the terminal only
 *   through `printable`, `safe`, `printableJson` or `table`, so it cannot drive the terminal.
 */
import { InvalidArgumentError } from "commander";
import postgres from "postgres";

// Configuration -------------------------------------------------------------------------------------------------------

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

export interface CliConfig {
  supabaseUrl: string;
  dbUrl: string;
  key: string;
  bucket: string;
  /** SUPABASE_URL is on loopback: the local stack. */
  local: boolean;
}

type Env = Record<string, string | undefined>;

const LOCAL_URL = "http://127.0.0.1:54321";
const LOCAL_DB_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const SERVICE_KEY_VARS = ["SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_KEY"];

/** Where the local stack publishes its URLs and keys: `<LOCAL_STATE_DIR or the checkout's .local>/stack.env`. */
export function localStackEnvFile(env: Env): string {
  const stateDir = env.LOCAL_STATE_DIR?.trim() || new URL("../.local", import.meta.url).pathname;
  return `${stateDir.replace(/\/+$/, "")}/stack.env`;
}

/** The local stack's published KEY=VALUE settings; {} when it has written none (never started here). */
export function readLocalStackEnv(env: Env): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(localStackEnvFile(env));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw error;
  }
  const values: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match) values[match[1]] = match[2].trim();
  }
  return values;
}

/**
 * Reads the CLI's configuration from `env`; `stack` (what {@link readLocalStackEnv} returns) supplies the local
 * defaults, used only when SUPABASE_URL is on loopback: its API URL when SUPABASE_URL is not set, its secret key,
 * and its database URL when its API URL is the one in use (else the well-known 127.0.0.1:54322).
 */
export function loadCliConfig(env: Env, stack: Env = {}): CliConfig {
  const get = (key: string) => env[key]?.trim() || undefined;
  const supabaseUrl = (get("SUPABASE_URL") ?? stack.SUPABASE_URL ?? LOCAL_URL).replace(/\/+$/, "");
  let host: string;
  try {
    host = new URL(supabaseUrl).hostname;
  } catch {
    throw new CliError(`SUPABASE_URL must be an http(s) URL, got "${supabaseUrl}"`, 2);
  }
  const local = ["127.0.0.1", "localhost", "[::1]", "::1"].includes(host);
  const published = (name: string) => (local ? stack[name]?.trim() || undefined : undefined);
  const key = SERVICE_KEY_VARS.map(get).find((v) => v) ?? published("SUPABASE_SECRET_KEY");
  if (!key) {
    const start = local
      ? `, or start the local stack (bash scripts/stack.sh up), which publishes its key in ${
        localStackEnvFile(env)
      }`
      : "";
    throw new CliError(
      `No service key: set ${SERVICE_KEY_VARS.join(", ")} (Dashboard → Project Settings → API keys)${start}`,
      2,
    );
  }
  const sameStack = stack.SUPABASE_URL?.trim().replace(/\/+$/, "") === supabaseUrl;
  const dbUrl = get("SUPABASE_DB_URL") ??
    (local ? (sameStack ? published("SUPABASE_DB_URL") : undefined) ?? LOCAL_DB_URL : undefined);
  if (!dbUrl) {
    throw new CliError(
      "SUPABASE_DB_URL is not set: use the project's connection string (Dashboard → Connect), e.g. the session " +
        "pooler postgresql://postgres.<ref>:<password>@aws-0-<region>.pooler.supabase.com:5432/postgres",
      2,
    );
  }
  if (!/^postgres(ql)?:\/\//.test(dbUrl)) {
    throw new CliError("SUPABASE_DB_URL must be a postgresql:// connection string", 2);
  }
  return { supabaseUrl, dbUrl, key, bucket: get("STORAGE_BUCKET") ?? "csv-uploads", local };
}

export type Sql = postgres.Sql;

export function connectDb(cfg: CliConfig): Sql {
  // prepare: false also works behind Supavisor's transaction pooler.
  return postgres(cfg.dbUrl, {
    max: 2,
    prepare: false,
    idle_timeout: 5,
    onnotice: () => {},
    connection: { application_name: "csv-import cli" },
  });
}

// Formatting ------------------------------------------------------------------------------------------------------------

export const TERMINAL = new Set(["succeeded", "succeeded_with_rejects", "validated", "failed", "cancelled"]);
/** What exits 0: a load that succeeded (with or without rejects), or a dry run that validated its file. */
export const SUCCESS = new Set(["succeeded", "succeeded_with_rejects", "validated"]);

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 1234567 → "1,234,567". */
export const formatCount = (n: number | string | null | undefined): string =>
  Number(n ?? 0).toLocaleString("en-US");

/**
 * Text from the data (object names, reject reasons and raw records, job and chunk errors, table cells) made safe
 * to print on a terminal: C0 controls (ESC, CR, BS, …, and tab and newline), DEL, C1 controls (U+0080–U+009F:
 * CSI U+009B starts an escape sequence on some terminals) and the Unicode bidi and line-separator controls
 * (U+061C, U+200E/F, U+2028/9, U+202A–U+202E, U+2066–U+2069) become visible escapes: `\x1b`, `\r`, `\n`, `\t`,
 * `\x7f`, `\u009b`, `\u202e`. So a value cannot clear the screen, move the cursor, rewrite an earlier line,
 * set the window title, fake a line of output or reorder what the operator reads. Backslashes are left as they
 * are: the escapes are for reading, not for parsing back.
 */
export function printable(value: unknown): string {
  return String(value ?? "").replace(UNPRINTABLE, escapeChar);
}

// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw inside strings (it escapes C0; a raw newline in its output is indentation). */
const UNPRINTABLE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED_ESCAPES[c] ??
    (code <= 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
}

/**
 * Template tag for a line of output: every interpolated value goes through {@link printable}, the literal text
 * stays as written. `console.log(safe\`Job ${id}: ${job.error}\`)`.
 */
export function safe(strings: TemplateStringsArray, ...values: unknown[]): string {
  let text = strings[0];
  for (let i = 0; i < values.length; i++) text += printable(values[i]) + strings[i + 1];
  return text;
}

/**
 * JSON for stdout: JSON.stringify already escapes C0 controls inside strings; this also writes DEL, C1 and the
 * bidi and line-separator controls as \uXXXX escapes (the same JSON value, parsed back).
 */
export function printableJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    UNPRINTABLE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => c === null ? "" : printable(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** A database error as one line: message, detail and hint. */
export function pgMessage(error: unknown): string {
  const e = error as { message?: string; hint?: string; detail?: string };
  return [e.message ?? String(error), e.detail, e.hint].filter(Boolean).join(" ");
}

// Argument parsers ------------------------------------------------------------------------------------------------------

export function parseJobId(value: string): number {
  const id = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(id) || id <= 0) {
    throw new InvalidArgumentError("a job id is a positive integer");
  }
  return id;
}

export function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number");
  return n;
}

export function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number of at least 0");
  return n;
}

/** "email=E-mail|Mail address" → ["email", ["E-mail", "Mail address"]]. */
export function parseAlias(value: string): [string, string[]] {
  const at = value.indexOf("=");
  const column = value.slice(0, at).trim();
  const names = value.slice(at + 1).split("|").map((s) => s.trim()).filter(Boolean);
  if (at <= 0 || !column || names.length === 0) {
    throw new InvalidArgumentError(
      'expected COLUMN=Header name[|Other name], e.g. "email=E-mail|Mail address"',
    );
  }
  return [column, names];
}
