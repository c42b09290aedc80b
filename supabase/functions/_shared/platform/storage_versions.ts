/**
 * The object's current ETag as the database records it, for StorageClient's `currentEtag` option: the client
 * asks it when a response carries another version's ETag than the job's, to tell a stale cached copy (the
 * database still records the job's version: wait it out) from an overwrite (ObjectChangedError).
 *
 * Invariants:
 * - Reads storage.objects.metadata->>'eTag', which hosted Storage writes with every upload (the same value it
 *   sends as the ETag header); null when the object is gone or its row has no ETag.
 * - One read-only statement, no locks beyond a snapshot.
 */
import type { Config } from "./config.ts";
import type { Sql } from "./db.ts";
import { StorageClient } from "./storage.ts";

/**
 * The Storage client of the functions that read a job's object version (register, chunk): the service key, and
 * the database's ETag to tell a stale cached copy from an overwrite; `staleWaitMs` bounds the wait for the first.
 */
export function versionedStorage(
  cfg: Pick<Config, "supabaseUrl" | "serviceKey">,
  sql: Sql,
  staleWaitMs?: number,
): StorageClient {
  return new StorageClient({
    supabaseUrl: cfg.supabaseUrl,
    key: cfg.serviceKey,
    currentEtag: databaseEtag(sql),
    ...(staleWaitMs !== undefined ? { staleWaitMs } : {}),
  });
}

export function databaseEtag(sql: Sql): (bucket: string, name: string) => Promise<string | null> {
  return async (bucket, name) => {
    const [row] = await sql<{ etag: string | null }[]>`
      select metadata->>'eTag' as etag from storage.objects where bucket_id = ${bucket} and name = ${name}`;
    return row?.etag ?? null;
  };
}
