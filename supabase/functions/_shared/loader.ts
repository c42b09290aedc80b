/**
 * Writes one batch of validated rows into the target table, inside the caller's transaction.
 *
 * Two paths:
 * - fast (insert mode only): `COPY target (cols) FROM STDIN` straight into the table, as close to `psql \copy`
 *   as the database allows. If the database refuses any row (a unique, foreign key or check constraint), the
 *   transaction is aborted and the caller retries the batch in a new transaction on the isolating path.
 * - isolating (upsert and skip_duplicates always; insert after a refused fast path): COPY into a
 *   transaction-local staging table of text columns (which cannot refuse a validated row), then
 *   `INSERT INTO target SELECT c1::type1, … FROM stage [ON CONFLICT …]` over ranges of the batch, each in its
 *   own savepoint. A refused range is split in halves until single rows remain (pgloader's bisection); those
 *   become rejects with Postgres's message and the rest load. Cost: O(k log n) statements for k bad rows of n.
 *
 * Why not a savepoint around COPY itself: postgres.js resolves a failed `COPY … FROM STDIN` writable query
 * without an error and leaves the transaction aborted (measured: the next statement fails with 25P02), so a
 * refused COPY can only be detected after the fact, at transaction level. Plain INSERTs inside savepoints
 * report their errors normally.
 *
 * Invariants:
 * - Never commits or rolls back the caller's transaction; a refused range only rolls back to its savepoint.
 * - Only data errors (SQLSTATE classes 22 and 23, and 21000) are isolated; anything else propagates so the
 *   whole batch is retried.
 * - Identifiers and types come from the catalog (csv_import.describe_target, whose type names are schema-
 *   qualified) and are quoted here; nothing from the file reaches SQL text.
 * - The text-to-type casts give the same values COPY would: the converter already validated each value and
 *   wrote it in canonical form (explicit casts only differ from input conversion by truncating over-long
 *   strings, which the converter rejects beforehand).
 */
import type postgres from "postgres";

export type ConflictMode = "insert" | "upsert" | "skip_duplicates";

export interface LoadColumn {
  /** Catalog column name. */
  name: string;
  /** Schema-qualified type as format_type prints it (e.g. `character varying(20)`, `public.mood`). */
  type: string;
}

export interface LoadTarget {
  /** Schema-qualified table name as stored in the job. */
  table: string;
  /** Columns in COPY field order. */
  columns: LoadColumn[];
  mode: ConflictMode;
  conflictColumns: string[];
}

/** One row ready for COPY TEXT (fields escaped, tab-separated, newline-terminated), with what a reject needs. */
export interface PreparedRow {
  copyLine: string;
  line: number;
  raw: string;
}

export interface RowReject {
  line: number;
  column: string | null;
  reason: string;
  raw: string;
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

/** A database refusal of the data (not of the connection or the transaction's timing). */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  // 22: data exception, 23: integrity constraint violation, 21000: a key repeated within one upsert batch.
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23") || code === "21000");
}

/** How a refused fast-path COPY shows: the refusal itself, or 25P02 from the statement after it. */
export function isFastPathRefusal(error: unknown): boolean {
  return isDataError(error) || (error as { code?: unknown })?.code === "25P02";
}

function describeDbError(error: unknown): { reason: string; column: string | null } {
  const e = error as { message?: string; detail?: string; column_name?: string };
  const detail = e.detail ? ` (${e.detail})` : "";
  return { reason: `${e.message ?? String(error)}${detail}`, column: e.column_name ?? null };
}

async function copyText(tx: Tx, statement: string, rows: PreparedRow[]): Promise<void> {
  const query = tx.unsafe(statement);
  const stream = await query.writable();
  // One string for the whole batch (a few hundred kB): fewer writes than one per row.
  stream.write(rows.map((r) => r.copyLine).join(""));
  stream.end();
  await query;
}

export class BatchLoader {
  readonly #target: LoadTarget;
  readonly #table: string;
  readonly #list: string;

  constructor(target: LoadTarget) {
    this.#target = target;
    this.#table = quoteQualified(target.table);
    this.#list = target.columns.map((c) => quoteIdent(c.name)).join(", ");
  }

  /** Whether the fast path applies (plain inserts). */
  get canWriteFast(): boolean {
    return this.#target.mode === "insert";
  }

  /** Fast path: COPY straight into the table. A refusal surfaces at the transaction's next statement. */
  async writeFast(tx: Tx, rows: PreparedRow[]): Promise<BatchResult> {
    if (rows.length > 0) await copyText(tx, `copy ${this.#table} (${this.#list}) from stdin`, rows);
    return { loaded: rows.length, skipped: 0, rejects: [] };
  }

  /** Isolating path: every row ends loaded, skipped or rejected; refusals never abort the transaction. */
  async writeIsolating(tx: Tx, rows: PreparedRow[]): Promise<BatchResult> {
    const result: BatchResult = { loaded: 0, skipped: 0, rejects: [] };
    if (rows.length === 0) return result;
    const stageColumns = this.#target.columns.map((_, i) => `c${i + 1}`);
    await tx.unsafe(
      `create temp table if not exists csv_import_stage (seq bigint generated always as identity, ${
        stageColumns.map((c) => `${c} text`).join(", ")
      }) on commit drop`,
    );
    await tx.unsafe("truncate pg_temp.csv_import_stage restart identity");
    await copyText(tx, `copy pg_temp.csv_import_stage (${stageColumns.join(", ")}) from stdin`, rows);
    await this.#insertRange(tx, rows, 0, rows.length, result);
    return result;
  }

  async #insertRange(
    tx: Tx,
    rows: PreparedRow[],
    from: number,
    to: number,
    result: BatchResult,
  ): Promise<void> {
    try {
      const count = await tx.savepoint((sp) => this.#insert(sp, from, to));
      const size = to - from;
      if (this.#target.mode === "skip_duplicates") {
        result.loaded += count;
        result.skipped += size - count;
      } else {
        result.loaded += size;
      }
    } catch (error) {
      if (!isDataError(error)) throw error;
      if (to - from === 1) {
        const { reason, column } = describeDbError(error);
        result.rejects.push({ line: rows[from].line, column, reason, raw: rows[from].raw });
        return;
      }
      const middle = (from + to) >>> 1;
      await this.#insertRange(tx, rows, from, middle, result);
      await this.#insertRange(tx, rows, middle, to, result);
    }
  }

  async #insert(tx: Tx, from: number, to: number): Promise<number> {
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
    // seq is 1-based; the range [from, to) of the batch is seq (from, to].
    const inserted = await tx.unsafe(
      `insert into ${this.#table} (${this.#list}) select ${casts} from pg_temp.csv_import_stage
       where seq > ${from} and seq <= ${to} order by seq ${onConflict}`,
    );
    return inserted.count ?? 0;
  }
}
