/**
 * Builds the environment of worker processes: the variables Supabase injects into every function, the
 * project's secrets file, the gateway's overrides, and the few host variables Deno itself needs.
 *
 * Invariants:
 * - A worker sees nothing else from the parent process: the caller spawns with `clearEnv: true`.
 * - Injected defaults come from local-stack/keys.ts: SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY,
 *   SUPABASE_PUBLISHABLE_KEYS / SUPABASE_SECRET_KEYS as `{"default": …}` and SUPABASE_JWKS (the CLI's local
 *   JWKS: the HS256 secret as an `oct` key). `options.env` (SUPABASE_URL, SUPABASE_DB_URL, …) overrides them.
 * - As in the CLI, secrets-file names starting with `SUPABASE_` are skipped (logged), and injected values win.
 * - SB_EXECUTION_ID is added per worker process by worker_process.ts, not here.
 */
import { ANON_KEY, JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY, SERVICE_ROLE_KEY } from "../keys.ts";
import type { LogFn } from "./types.ts";

/**
 * Host variables passed through when set: Deno's search path, cache location and TLS trust (certificate
 * store and bundle), and proxy settings, without which a worker could not fetch its npm dependencies.
 */
export const HOST_PASSTHROUGH = [
  "PATH",
  "HOME",
  "DENO_DIR",
  "DENO_TLS_CA_STORE",
  "DENO_CERT",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
];

function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The variables Supabase injects when the gateway passes none. */
export function supabaseDefaults(): Record<string, string> {
  return {
    SUPABASE_ANON_KEY: ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
    SUPABASE_JWKS: JSON.stringify({ keys: [{ kty: "oct", k: base64url(JWT_SECRET) }] }),
  };
}

/** Parses `KEY=VALUE` lines (`#` comments, optional `export `, single or double quotes). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replaceAll("\\n", "\n").replaceAll('\\"', '"');
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[key] = value;
  }
  return out;
}

/** Merges host essentials, secrets file, Supabase defaults and the gateway's variables (later wins). */
export async function buildWorkerEnv(
  inject: Record<string, string>,
  envFile: string | undefined,
  log: LogFn,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const name of HOST_PASSTHROUGH) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  if (envFile !== undefined) {
    for (const [name, value] of Object.entries(parseEnvFile(await Deno.readTextFile(envFile)))) {
      if (name.startsWith("SUPABASE_")) {
        log({
          event: "env_skipped",
          name,
          message: `Env name cannot start with SUPABASE_, skipping: ${name}`,
        });
      } else {
        env[name] = value;
      }
    }
  }
  return { ...env, ...supabaseDefaults(), ...inject };
}
