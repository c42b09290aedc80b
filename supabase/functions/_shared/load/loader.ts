/**
 * Writes one batch of validated rows into the target table, inside the caller's transaction.
 *
 * Two paths:
 * - fast (insert mode only): the batch's rows go to `COPY target (cols) FROM STDIN` straight into the table, in
 *   pieces of about 1 MiB (binary when every row of the piece has a binary form: CopyPiece), each COPY inside
 *   its own savepoint (`startPiece` / `settlePiece`). The caller
 *   parses the next piece while the database runs the COPY of the current one (one piece ahead, so memory
 *   stays bounded by two pieces). If the database refuses a row (a unique, foreign key or check constraint),
 *   only that piece is rolled back to its savepoint and goes through the isolating path, which learns which
 *   rows failed and why; every other row loads.
 * - isolating (upsert and skip_duplicates always; a refused piece in insert mode): COPY into a
 *   transaction-local staging table of text columns (which cannot refuse a validated row), then
 *   csv_import.insert_isolating runs `INSERT INTO target SELECT c1::type1, … FROM stage [ON CONFLICT …]` and
 *   on a refusal splits the range in halves until single rows remain (pgloader's bisection), in
 *   subtransactions on the server; those rows become rejects with Postgres's message and the rest load.
 *   Cost: O(k log n) statements for k bad rows of n, and a constant number of round trips.
 *
 * Why pieces in savepoints (measured on the 1M-row reference file with planted bad rows, 2 cores): a refused
 * piece costs about two pieces of work, where a refused COPY of a whole 5,000-row batch, redone through the
 * staging table, cost Postgres ~2.5 s of a 9.6 s run. Why the bisection runs on the server: each statement
 * from the worker costs a round trip of ~1.5 ms (postgres.js in Deno), ~11 ms per refused row over the three
 * statements of a savepointed INSERT; a re-imported file (every row a duplicate key) takes 0.7 s for 2,000
 * rows this way, 23 s from the worker (docs/performance.md).
 *
 * How a refused COPY shows with postgres.js: it resolves a `COPY … FROM STDIN` writable query as soon as the
 * copy starts, so a refusal reported after CopyDone is lost and the transaction is left aborted: the next
 * statement (here a `select 1` probe) fails with 25P02, which is the refusal signal. A refusal that arrives
 * while data is still being written destroys the stream with the real error instead. Either way only the
 * piece's savepoint is rolled back. The next statement may only be sent once postgres.js has sent CopyDone
 * (until then it rejects the statement with COPY_IN_PROGRESS): `copyRows` waits for exactly that.
 *
 * Invariants:
 * - Never commits or rolls back the caller's transaction; a refused range only rolls back to its savepoint.
 * - Only refusals of a row are isolated (isRowRefusal: data exceptions, constraint violations, a trigger's
 *   RAISE, a row-level security refusal, …, the same list as csv_import.is_row_refusal), and errors an input
 *   function raised for a value (mayBeInputRefusal, decided on the server by casting the row's values alone);
 *   connection, transaction, resource and other internal errors propagate so the whole batch is retried.
 * - Loaded counts what the database inserted (COPY's and INSERT's command tags count only rows written): rows
 *   a BEFORE trigger drops (returns NULL) are counted as skipped, so rows parsed = loaded + rejected + skipped.
 * - Values given for an `identity always` column are written as given, as COPY (and `psql \copy`) writes
 *   them: the isolating INSERT says OVERRIDING SYSTEM VALUE.
 * - With a writer (the uploader: LoadTarget.writer) every row goes through the isolating path and each INSERT
 *   runs as the uploader (csv_import.insert_isolating switches role and claims for it); its rejects carry
 *   no DETAIL, which may show values of rows the uploader cannot read (docs/security.md); nor do the rejects
 *   of any job a signed-in user uploaded (LoadTarget.hideDetail), since that user reads them.
 * - A refusal is worded as the loading session's COPY words it: csv_import.insert_isolating runs the INSERT with the
 *   session's search_path (a domain or enum in public is named unqualified, as `\copy` names it).
 * - Identifiers and types come from the catalog (csv_import.describe_target, whose type names are schema-
 *   qualified) and are quoted here; nothing from the file reaches SQL text.
 * - The text-to-type casts give the same values COPY would: the converter already validated each value and
 *   wrote it in canonical form (explicit casts only differ from input conversion by truncating over-long
 *   strings, which the converter rejects beforehand).
 */
import type postgres from "postgres";
import { CopyPiece, type PreparedRow } from "./copy_piece.ts";

export type ConflictMode = "insert" | "upsert" | "skip_duplicates";

export interface LoadColumn {
  /** Catalog column name. */
  name: string;
  /**
   * The type a staged text value is cast to (loadColumnType in pipeline/chunk_batch.ts): schema-qualified, as
   * format_type prints it (`character varying(20)`, `public.mood`), or for a column PostgreSQL validates
   * itself its base type without typmod (`"pg_catalog"."_bpchar"`), so the INSERT's assignment applies the typmod.
   */
  type: string;
  /** `always` for a GENERATED ALWAYS AS IDENTITY column (the isolating INSERT then overrides it). */
  identity?: "always" | "by_default" | null;
  /**
   * The column's domain (schema-qualified) when its type is one, else null: the probe of a refused row casts the
   * value to it after `type` (which is the domain's base type when PostgreSQL validates the column itself), so that
   * the domain's CHECKs are read as COPY's input reads them.
   */
  domain?: string | null;
}

/** Whom a job's rows are written as: the uploader's role and JWT claims (csv_import.load_writer). */
export interface Writer {
  role: "authenticated" | "anon";
  claims: Record<string, unknown>;
}

export interface LoadTarget {
  /** Schema-qualified table name as stored in the job. */
  table: string;
  /** Columns in COPY field order. */
  columns: LoadColumn[];
  mode: ConflictMode;
  conflictColumns: string[];
  /**
   * Write as this uploader (every batch through the isolating path, each INSERT as the uploader: policies,
   * auth.uid() defaults and column grants apply); null or absent: with the pipeline's own rights.
   */
  writer?: Writer | null;
  /**
   * Leave PostgreSQL's DETAIL out of reject reasons: a signed-in user reads this job's rejects, and a DETAIL may
   * show values of rows they cannot read (`Key (email)=(…) already exists`). Set for every job with an uploader,
   * whatever rights it writes with (the uploader's own writes get no DETAIL from insert_isolating anyway).
   */
  hideDetail?: boolean;
  /**
   * The job: with it, upsert and skip_duplicates keep file order for keys repeated across batches and chunks
   * (csv_import.write_keyed); without it they write as a plain INSERT … ON CONFLICT, in commit order.
   */
  jobId?: number;
}

export interface RowReject {
  line: number;
  column: string | null;
  reason: string;
  /** The record's text; null for a row the database refused, until the caller fills it from the file. */
  raw: string | null;
  offset?: number;
  byteLength?: number;
}

export interface BatchResult {
  loaded: number;
  skipped: number;
  rejects: RowReject[];
}

type Tx = postgres.TransactionSql;

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Splits "schema.table" (either part possibly quoted) into a safely quoted qualified name. */
export function quoteQualified(table: string): string {
  const parts = table.match(/"(?:[^"]|"")*"|[^.]+/g) ?? [table];
  return parts.map((p) => (p.startsWith('"') ? p : quoteIdent(p))).join(".");
}

/**
 * SQLSTATE classes and codes that refuse one row, not the statement, the connection or the transaction: the
 * same list as csv_import.is_row_refusal (tests/target_refusals_test.ts compares them). 21: cardinality (a key
 * repeated within one upsert), 22: data exception, 23: integrity constraint (deferred ones included, once
 * checked), 27: triggered data change, 44: WITH CHECK OPTION, 09: triggered action, P0001–P0004: a trigger's
 * RAISE, NO_DATA_FOUND, TOO_MANY_ROWS or ASSERT, 42501: a row-level security policy refused the row (or the
 * writer lacks a privilege, which every row then reports), 54000: a row too large for its index or page,
 * 42601: a type's input function refusing a value as a syntax error (hstore; migration
 * 20261208000100_row_refusal_type_syntax.sql). Never: 08 connection, 25 transaction state, 40 rollback
 * (serialization, deadlock), 53 resources, 55 object state (locks), 57 operator intervention (cancel,
 * shutdown), 58 system, XX internal, nor 42 other than 42501 and 42601 (the statement itself is wrong): those
 * propagate so the batch is retried or the chunk fails.
 */
const ROW_REFUSAL_CLASSES = new Set(["21", "22", "23", "27", "44", "09"]);
const ROW_REFUSAL_CODES = new Set(["P0001", "P0002", "P0003", "P0004", "42501", "54000", "42601"]);

/** A refusal of one row by the target (see ROW_REFUSAL_CLASSES), which the isolating path turns into a reject. */
export function isRowRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.length === 5 &&
    (ROW_REFUSAL_CLASSES.has(code.slice(0, 2)) || ROW_REFUSAL_CODES.has(code));
}

/**
 * SQLSTATE classes an input function may refuse a value with although they are not row refusals: 0A (a type whose
 * input always refuses: ghstore, pg_brin_bloom_summary), 3F and 42 (reg* values naming objects that do not exist,
 * malformed or ambiguous names), XX (PostGIS's "parse error - invalid geometry"). The same list as
 * csv_import.may_be_input_refusal (migration 20261209000500_input_refusals.sql). A piece refused with one goes to
 * the isolating path, where a single row is refused only when its values alone, cast to the column types, raise
 * the same error (the probe of csv_import.insert_isolating); anything else propagates from there as before.
 */
const INPUT_REFUSAL_CLASSES = new Set(["0A", "3F", "42", "XX"]);

/** Whether an error may be an input function refusing a value (see INPUT_REFUSAL_CLASSES). */
export function mayBeInputRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.length === 5 && INPUT_REFUSAL_CLASSES.has(code.slice(0, 2));
}

/**
 * How a refused fast-path COPY shows: the refusal itself, or 25P02 from the statement after it; or an error that
 * may be an input function's refusal (mayBeInputRefusal), which the isolating path then decides.
 */
export function isFastPathRefusal(error: unknown): boolean {
  return isRowRefusal(error) || (error as { code?: unknown })?.code === "25P02" || mayBeInputRefusal(error);
}

type WritableInternals = {
  _final?: (this: unknown, callback: (error?: Error | null) => void) => void;
  _destroy?: (error: Error | null, callback: (error?: Error | null) => void) => void;
};

/**
 * Runs `COPY … FROM STDIN` with `data` and resolves once postgres.js has sent CopyDone, i.e. as soon as the
 * connection accepts the next statement of the transaction (which then also tells whether the COPY failed:
 * 25P02). Rejects when the database refused the data while it was still being written (the stream is then
 * destroyed with the database's error). `onCount` receives the COPY's command tag count (rows written, which
 * leaves out rows a BEFORE trigger dropped) once the COPY completed, i.e. before the next statement answers.
 */
export async function copyRows(
  tx: Tx,
  statement: string,
  data: string | Uint8Array,
  opts: { onCount?: (count: number | null) => void } = {},
): Promise<void> {
  const query = tx.unsafe(statement);
  if (opts.onCount) onCommandComplete(query, opts.onCount);
  const stream = await query.writable();
  const sent = Promise.withResolvers<void>();
  // postgres.js sends CopyDone in the Writable's final(); wrap it to learn when it ran (stream 'finish' only
  // fires on success, after CommandComplete).
  const internals = stream as unknown as WritableInternals;
  const final = internals._final;
  if (typeof final !== "function") {
    throw new Error("postgres.js COPY stream has no final(): unsupported version");
  }
  internals._final = function (callback) {
    final.call(this, callback);
    // Once CopyDone is out, the stream must not send anything more: postgres.js's destroy() writes CopyFail,
    // and the Writable auto-destroys itself after 'finish' (on the COPY's CommandComplete), by which time the
    // connection may be running the next COPY, which that stray CopyFail would abort (measured: "COPY from
    // stdin failed: null" on back-to-back COPYs).
    internals._destroy = (error, cb) => cb(error);
    sent.resolve();
  };
  const onError = (error: Error) => sent.reject(error);
  stream.once("error", onError);
  stream.once("close", () => sent.reject(new Error("COPY stream closed before CopyDone")));
  stream.write(data);
  stream.end();
  try {
    await sent.promise;
  } finally {
    stream.off("error", onError);
  }
}

/**
 * postgres.js resolves a COPY FROM STDIN query with its stream when the copy starts, and calls the query's
 * resolve again with the result (command tag count included) at ReadyForQuery, which a promise ignores: wrap
 * that second call to learn the count. Version-dependent like copyRows' CopyDone hook (postgres@3.4.9).
 */
function onCommandComplete(query: unknown, onCount: (count: number | null) => void): void {
  const q = query as { resolve?: (value: unknown) => void };
  const resolve = q.resolve;
  if (typeof resolve !== "function") {
    throw new Error("postgres.js query has no resolve(): unsupported version");
  }
  q.resolve = (value: unknown) => {
    if (Array.isArray(value)) onCount((value as { count?: number | null }).count ?? null);
    resolve(value);
  };
}

/**
 * Rows of a piece that a fast-path COPY is writing; `ok` settles with the rows the COPY wrote (its command tag),
 * or false when the database refused the piece.
 */
export interface InflightPiece {
  piece: CopyPiece | PreparedRow[];
  ok: Promise<number | false>;
}

/** csv_import.insert_isolating's reply (jsonb), and the rows of csv_import.take_existing_keys. */
interface IsolatedOutcome {
  inserted: number;
  rejects: { seq: number; message: string; detail: string | null; column: string | null }[];
}

export class BatchLoader {
  readonly #target: LoadTarget;
  readonly #table: string;
  readonly #list: string;
  readonly #copy: string;
  readonly #copyBinary: string;
  /**
   * Fast-path pieces started, by COPY format (logged per chunk: how much went binary), and the pieces whose
   * deferred text was built (sent as text, or refused and bisected: CopyPiece.ensureText).
   */
  readonly piecesSent = { binary: 0, text: 0, textBuilt: 0 };

  constructor(target: LoadTarget) {
    this.#target = target;
    this.#table = quoteQualified(target.table);
    this.#list = target.columns.map((c) => quoteIdent(c.name)).join(", ");
    this.#copy = `copy ${this.#table} (${this.#list}) from stdin`;
    this.#copyBinary = `${this.#copy} with (format binary)`;
  }

  /**
   * Makes the rest of the batch's transaction check deferred constraints at the end of each statement, so that
   * a refusal by one of them is isolated like any other (a batch whose commit-time check failed is redone so).
   */
  async checkConstraintsImmediately(tx: Tx): Promise<void> {
    await tx`set constraints all immediate`;
  }

  /**
   * Checks the batch's deferred constraints now (they would be checked at COMMIT, where a refusal fails the
   * whole batch, again at every retry). True when they hold; false when one refuses a row of the batch (the
   * caller then redoes the batch with {@link checkConstraintsImmediately}). Any other error propagates.
   */
  async deferredConstraintsHold(tx: Tx): Promise<boolean> {
    try {
      await tx.savepoint((sp) => sp`set constraints all immediate`);
      return true;
    } catch (error) {
      if (isRowRefusal(error)) return false;
      throw error;
    }
  }

  /**
   * Whether the fast path applies: plain inserts with the pipeline's rights. An uploader's rows always take the
   * isolating path: PostgreSQL refuses COPY FROM into a table with row-level security for a role subject to it.
   */
  get canWriteFast(): boolean {
    return this.#target.mode === "insert" && !this.#target.writer;
  }

  /**
   * Fast path, first half: COPY `rows` straight into the table inside a new savepoint. Resolves once the data
   * is sent; the returned piece's `ok` settles when the database has taken it (or refused it). Nothing else
   * may run on `tx` before {@link settlePiece} of this piece, except parsing on the caller's side.
   */
  async startPiece(tx: Tx, piece: CopyPiece | PreparedRow[]): Promise<InflightPiece> {
    const sent = Promise.withResolvers<void>();
    const binary = piece instanceof CopyPiece && piece.binary;
    if (piece instanceof CopyPiece && !binary && await piece.ensureText()) this.piecesSent.textBuilt++;
    const data = piece instanceof CopyPiece
      ? (binary ? piece.binData() : piece.data())
      : joinRows(piece, 0, piece.length);
    const statement = binary ? this.#copyBinary : this.#copy;
    this.piecesSent[binary ? "binary" : "text"]++;
    // A savepoint scope of postgres.js: a failing statement inside it rolls back to its savepoint and rejects
    // the scope, without marking the whole transaction as failed (the outer scope records every failure of
    // its own statements and would roll back at the end).
    const rows = piece instanceof CopyPiece ? piece.count : piece.length;
    let written: number | null = null;
    const scope = tx.savepoint(async (sp) => {
      try {
        await copyRows(sp, statement, data, { onCount: (count) => written = count });
      } finally {
        sent.resolve();
      }
      await sp`select 1`; // fails with 25P02 when the database refused the COPY after CopyDone
    });
    const ok = scope.then(() => written ?? rows, (error): false => {
      if (isFastPathRefusal(error)) return false;
      throw error;
    });
    ok.catch(() => {}); // awaited by settlePiece; a failure there propagates
    await Promise.race([sent.promise, ok]);
    return { piece, ok };
  }

  /**
   * Fast path, second half: waits for the piece's COPY; a refused piece (already rolled back to its
   * savepoint) is bisected so that every row ends loaded or rejected.
   */
  async settlePiece(tx: Tx, inflight: InflightPiece): Promise<BatchResult> {
    const { piece } = inflight;
    const written = await inflight.ok;
    if (written !== false) {
      // Rows a BEFORE trigger dropped are not in COPY's count: they are skipped.
      return {
        loaded: written,
        skipped: (piece instanceof CopyPiece ? piece.count : piece.length) - written,
        rejects: [],
      };
    }
    if (piece instanceof CopyPiece && await piece.ensureText()) this.piecesSent.textBuilt++;
    return await this.writeIsolating(tx, piece instanceof CopyPiece ? piece.rows() : piece);
  }

  /**
   * Isolating path: every row ends loaded, skipped or rejected; refusals never abort the transaction. The rows
   * go to a staging table, then csv_import.insert_isolating inserts them with INSERT … SELECT and, on a
   * refusal, bisects on the server (one round trip, whatever the number of refused rows).
   */
  async writeIsolating(tx: Tx, rows: PreparedRow[]): Promise<BatchResult> {
    if (rows.length === 0) return { loaded: 0, skipped: 0, rejects: [] };
    // File order for repeated keys (csv_import.write_keyed) runs with the pipeline's rights only: a job that writes
    // as its uploader keeps the uploader's rights first, and writes in commit order (docs/security.md).
    if (this.#target.jobId !== undefined && this.#target.mode !== "insert" && !this.#target.writer) {
      return await this.#writeKeyed(tx, rows);
    }
    const stageColumns = this.#target.columns.map((_, i) => `c${i + 1}`);
    await tx.unsafe(
      `create temp table if not exists csv_import_stage (seq bigint generated always as identity, ${
        stageColumns.map((c) => `${c} text`).join(", ")
      }) on commit drop`,
    );
    await tx.unsafe("truncate pg_temp.csv_import_stage restart identity");
    const writer = this.#target.writer ?? null;
    // The uploader's INSERT reads the staging table (only this session can see a temp table).
    if (writer) await tx.unsafe(`grant select on pg_temp.csv_import_stage to ${quoteIdent(writer.role)}`);
    await copyRows(
      tx,
      `copy pg_temp.csv_import_stage (${stageColumns.join(", ")}) from stdin`,
      joinRows(rows, 0, rows.length),
    );
    // Insert mode: rows whose key is already in the table, found in one query per unique index, before the
    // bisection (~1 ms per refused row) sees the rest (csv_import.take_existing_keys).
    const existing = this.#target.mode !== "insert" ? [] : await tx<IsolatedOutcome["rejects"]>`
      select seq, message, detail, null as column from csv_import.take_existing_keys(${this.#target.table},
        ${this.#target.columns.map((c) => c.name)}::text[], ${
      this.#target.columns.map((c) => c.type)
    }::text[])`;
    const writerJson = writer ? tx.json(writer as unknown as postgres.JSONValue) : null;
    const [{ outcome }] = await tx<{ outcome: IsolatedOutcome }[]>`
      select csv_import.insert_isolating(p_insert => ${this.#insertStatement()}, p_from => 0,
        p_to => ${rows.length}, p_writer => ${writerJson}::jsonb, p_probe => ${this.#probeStatement()}) as outcome`;
    if (existing.length > 0) {
      outcome.rejects = [...existing, ...outcome.rejects].sort((a, b) => a.seq - b.seq);
    }
    // What the INSERT wrote (upserts: inserted or updated); the other accepted rows were skipped: existing keys
    // in skip_duplicates mode, and rows a BEFORE trigger dropped in every mode.
    const accepted = rows.length - outcome.rejects.length;
    return {
      loaded: outcome.inserted,
      skipped: accepted - outcome.inserted,
      rejects: this.#rowRejects(rows, outcome.rejects),
    };
  }

  /**
   * upsert / skip_duplicates in file order: the rows, each with its line, go to their own staging table, and
   * csv_import.write_keyed writes them so that the last (upsert) or first (skip_duplicates) occurrence of a key in
   * the file wins whatever order the job's batches commit in, recording each written key's line in
   * csv_import.key_claims in this transaction; refused rows are bisected there as insert_isolating does.
   */
  async #writeKeyed(tx: Tx, rows: PreparedRow[]): Promise<BatchResult> {
    const { columns, mode, conflictColumns, jobId, table } = this.#target;
    const stageColumns = columns.map((_, i) => `c${i + 1}`);
    await tx.unsafe(
      `create temp table if not exists csv_import_keyed_stage (seq bigint generated always as identity,
       line bigint not null, ${stageColumns.map((c) => `${c} text`).join(", ")}) on commit drop`,
    );
    await tx.unsafe("truncate pg_temp.csv_import_keyed_stage restart identity");
    const lines: string[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) lines[i] = `${rows[i].line}\t${rows[i].copyLine}`;
    await copyRows(
      tx,
      `copy pg_temp.csv_import_keyed_stage (line, ${stageColumns.join(", ")}) from stdin`,
      lines.join(""),
    );
    const columnsJson = tx.json(columns as unknown as postgres.JSONValue);
    const [{ outcome }] = await tx<{ outcome: IsolatedOutcome & { loaded: number; skipped: number } }[]>`
      select csv_import.write_keyed(p_job_id => ${jobId!}, p_mode => ${mode}, p_table => ${table},
        p_columns => ${columnsJson}, p_key => ${conflictColumns}::text[], p_rows => ${rows.length}) as outcome`;
    return {
      loaded: outcome.loaded,
      skipped: outcome.skipped,
      rejects: this.#rowRejects(rows, outcome.rejects),
    };
  }

  /**
   * The database's refusals of staged rows as rejects of the batch's rows (seq is 1-based: staging row s is
   * rows[s - 1]); raw text is filled in later from the rows' byte ranges (pipeline/chunk_reads.ts fillRaw).
   */
  #rowRejects(rows: PreparedRow[], refused: IsolatedOutcome["rejects"]): RowReject[] {
    return refused.map((r) => {
      const row = rows[r.seq - 1];
      return {
        line: row.line,
        column: r.column,
        reason: `${r.message}${r.detail && !this.#target.hideDetail ? ` (${r.detail})` : ""}`,
        raw: null,
        offset: row.offset,
        byteLength: row.byteLength,
      };
    });
  }

  /**
   * The staging rows ($1, $2] cast to the column types, nothing written: csv_import.insert_isolating runs it for a
   * single row whose INSERT raised an error that may be an input function's refusal (mayBeInputRefusal).
   */
  #probeStatement(): string {
    const casts = this.#target.columns.map((c, i) =>
      `c${i + 1}::${c.type}${c.domain ? `::${c.domain}` : ""}`
    );
    return `select ${casts.join(", ")} from pg_temp.csv_import_stage where seq > $1 and seq <= $2`;
  }

  /** INSERT … SELECT of staging rows ($1, $2] with the casts and the conflict clause of the mode. */
  #insertStatement(): string {
    const { columns, mode, conflictColumns } = this.#target;
    const casts = columns.map((c, i) => `c${i + 1}::${c.type}`).join(", ");
    const key = conflictColumns.map(quoteIdent).join(", ");
    const updates = columns.filter((c) => !conflictColumns.includes(c.name))
      .map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`);
    const onConflict = mode === "skip_duplicates"
      ? `on conflict ${key ? `(${key}) ` : ""}do nothing`
      : mode === "upsert"
      ? updates.length > 0
        ? `on conflict (${key}) do update set ${updates.join(", ")}`
        : `on conflict (${key}) do nothing`
      : "";
    // COPY writes values given for an identity-always column as they are; so does the INSERT, as \copy would.
    const overriding = columns.some((c) => c.identity === "always") ? "overriding system value " : "";
    return `insert into ${this.#table} (${this.#list}) ${overriding}select ${casts} from pg_temp.csv_import_stage
       where seq > $1 and seq <= $2 order by seq ${onConflict}`;
  }
}

/** The COPY text of rows[from, to): one string, so one write per COPY. */
export function joinRows(rows: PreparedRow[], from: number, to: number): string {
  const lines: string[] = new Array(to - from);
  for (let i = from; i < to; i++) lines[i - from] = rows[i].copyLine;
  return lines.join("");
}
