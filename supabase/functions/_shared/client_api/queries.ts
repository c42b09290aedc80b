/**
 * The client API's questions, asked of csv_import_api (migration 20261210000000_client_api.sql) inside the
 * caller's transaction (as_user.ts), so each answer holds only what row-level security lets the user see.
 *
 * Invariants:
 * - Rows come back as PostgREST would serialize them (to_jsonb: snake_case columns, numbers as JSON numbers,
 *   timestamps as ISO 8601 text), so an app gets the same objects from the view through PostgREST on hosted and
 *   through this function locally.
 * - An import the user cannot see is `null` / ImportNotFound: another user's import and one that does not exist
 *   look the same.
 */
import type { Sql } from "../platform/db.ts";

/** One row of csv_import_api.imports (see the migration for what each column means). */
export interface Import {
  id: number;
  bucket: string;
  object: string;
  status: string;
  table_name: string | null;
  bytes_total: number;
  bytes_done: number;
  percent: number;
  rows_parsed: number;
  rows_loaded: number;
  rows_rejected: number;
  rows_skipped: number;
  rows_per_second: number;
  eta_seconds: number | null;
  error: string | null;
  dry_run: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  rejects_status: string;
  rejects_object: string | null;
}

export interface Reject {
  line: number;
  column_name: string | null;
  reason: string;
  raw: string;
}

/** The import is not the user's, or does not exist. */
export class ImportNotFound extends Error {
  constructor(readonly importId: number) {
    super(`Import ${importId} not found`);
  }
}

/** The user's imports, newest first, at most `limit`. */
export async function listImports(tx: Sql, limit: number): Promise<Import[]> {
  const [{ imports }] = await tx<{ imports: Import[] }[]>`
    select coalesce(jsonb_agg(to_jsonb(i) order by i.created_at desc, i.id desc), '[]'::jsonb) as imports
    from (select * from csv_import_api.imports order by created_at desc, id desc limit ${limit}) i`;
  return imports;
}

/** One of the user's imports, or null. */
export async function getImport(tx: Sql, id: number): Promise<Import | null> {
  const rows = await tx<{ import: Import }[]>`
    select to_jsonb(i) as import from csv_import_api.imports i where i.id = ${id}`;
  return rows[0]?.import ?? null;
}

/** The first `limit` stored rejects of one of the user's imports, by line (ImportNotFound when not theirs). */
export async function listRejects(
  tx: Sql,
  id: number,
  limit: number,
): Promise<{ rejects: Reject[]; total: number }> {
  const found = await getImport(tx, id);
  if (!found) throw new ImportNotFound(id);
  const [{ rejects }] = await tx<{ rejects: Reject[] }[]>`
    select coalesce(jsonb_agg(jsonb_build_object('line', r.line, 'column_name', r.column_name,
      'reason', r.reason, 'raw', r.raw) order by r.line), '[]'::jsonb) as rejects
    from (select * from csv_import_api.import_rejects where import_id = ${id} order by line limit ${limit}) r`;
  return { rejects, total: found.rows_rejected };
}

/** Cancels one of the user's imports; returns its status afterwards (ImportNotFound when not theirs). */
export async function cancelImport(tx: Sql, id: number): Promise<string> {
  try {
    const [{ status }] = await tx<{ status: string }[]>`select csv_import_api.cancel_import(${id}) as status`;
    return status;
  } catch (error) {
    if ((error as { code?: string }).code === "P0002") throw new ImportNotFound(id);
    throw error;
  }
}
