/**
 * The SQL this service runs against storage.buckets / storage.objects, mirroring hosted Storage's queries
 * (supabase/storage `src/storage/database/knex.ts`, `migrations/tenant/*search*.sql`).
 *
 * Invariants:
 * - Every function takes a scoped transaction (db.ts); which rows are visible or writable is decided by
 *   RLS for that scope, never filtered here.
 * - `owner` is written only when the JWT `sub` is a uuid; `owner_id` always carries the `sub` (or null).
 * - Upserts target the `(bucket_id, name)` unique index, so a new object fires INSERT row triggers and an
 *   overwrite fires UPDATE row triggers.
 * - Each function sends its statement when called (`.execute()`), not when awaited: statements issued in a
 *   row on one transaction are pipelined and run in call order (routes_read.ts relies on it).
 */
import type postgres from "postgres";
import type { Tx } from "./db.ts";
import { ERRORS } from "./errors.ts";
import { isUuid } from "./names.ts";

export interface BucketRow {
  id: string;
  name: string;
  owner: string | null;
  owner_id: string | null;
  public: boolean;
  type: string;
  file_size_limit: number | null;
  allowed_mime_types: string[] | null;
  created_at: Date;
  updated_at: Date;
}

export interface ObjectRow {
  id: string;
  bucket_id: string;
  name: string;
  owner: string | null;
  owner_id: string | null;
  version: string | null;
  metadata: Record<string, unknown> | null;
  user_metadata: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
  last_accessed_at: Date;
}

export interface BucketFields {
  public?: boolean;
  file_size_limit?: number | null;
  allowed_mime_types?: string[] | null;
}

export interface ListOptions {
  limit: number;
  offset: number;
  search: string;
  sortColumn: "name" | "updated_at" | "created_at" | "last_accessed_at";
  ascending: boolean;
}

const jsonb = (tx: Tx, value: Record<string, unknown> | null | undefined) =>
  value ? tx.json(value as postgres.JSONValue) : null;
const ownerUuid = (sub: string | undefined) => (isUuid(sub) ? sub! : null);

export function findBucket(tx: Tx, id: string): Promise<BucketRow | undefined> {
  return tx<BucketRow[]>`
    select id, name, owner, owner_id, public, type, file_size_limit, allowed_mime_types, created_at, updated_at
    from storage.buckets where id = ${id}`.execute().then(([row]) => row);
}

export function listBuckets(
  tx: Tx,
  options: { limit?: number; offset: number; search: string; sortColumn: string; ascending: boolean },
): Promise<BucketRow[]> {
  return tx<BucketRow[]>`
    select id, name, owner, public, type, file_size_limit, allowed_mime_types, created_at, updated_at
    from storage.buckets
    where ${options.search ? tx`name ilike ${"%" + options.search + "%"}` : tx`true`}
    order by ${tx(options.sortColumn)} ${options.ascending ? tx`asc` : tx`desc`}
    limit ${options.limit ?? null} offset ${options.offset}`.execute();
}

export function insertBucket(
  tx: Tx,
  bucket: { id: string; name: string; sub: string | undefined } & Required<BucketFields>,
): Promise<unknown> {
  return tx`
    insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)
    values (${bucket.id}, ${bucket.name}, ${ownerUuid(bucket.sub)}, ${bucket.sub ?? null}, ${bucket.public},
            ${bucket.file_size_limit}, ${bucket.allowed_mime_types})`.execute();
}

/** Creates or reconfigures a bucket (config.toml seeding). */
export function upsertBucket(tx: Tx, bucket: { id: string } & Required<BucketFields>): Promise<unknown> {
  return tx`
    insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
    values (${bucket.id}, ${bucket.id}, ${bucket.public}, ${bucket.file_size_limit}, ${bucket.allowed_mime_types})
    on conflict (id) do update set public = excluded.public, file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types, updated_at = now()`.execute();
}

/** Returns how many buckets matched (0 → not found or not visible under RLS). */
export function updateBucket(tx: Tx, id: string, fields: BucketFields): Promise<number> {
  const set = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  if (Object.keys(set).length === 0) {
    return tx`select 1 from storage.buckets where id = ${id}`.execute().then((rows) => rows.length);
  }
  return tx`update storage.buckets set ${tx(set)}, updated_at = now() where id = ${id}`.execute()
    .then((result) => result.count);
}

export function deleteBucket(tx: Tx, id: string): Promise<number> {
  return tx`delete from storage.buckets where id = ${id}`.execute().then((result) => result.count);
}

export function hasObjects(tx: Tx, bucketId: string): Promise<boolean> {
  return tx`select 1 from storage.objects where bucket_id = ${bucketId} limit 1`.execute()
    .then((rows) => rows.length > 0);
}

export function findObject(
  tx: Tx,
  bucketId: string,
  name: string,
  forUpdate = false,
): Promise<ObjectRow | undefined> {
  return tx<ObjectRow[]>`
    select * from storage.objects where bucket_id = ${bucketId} and name = ${name}
    ${forUpdate ? tx`for update` : tx``}`.execute().then(([row]) => row);
}

export function findObjectNames(tx: Tx, bucketId: string, names: string[]): Promise<{ name: string }[]> {
  return tx<{ name: string }[]>`
    select name from storage.objects where bucket_id = ${bucketId} and name = any(${names})`.execute();
}

/** Hosted `createObject` as used by the upload permission test (plain INSERT, version '1'). */
export function insertObjectProbe(
  tx: Tx,
  o: { bucketId: string; name: string; sub?: string },
): Promise<unknown> {
  return tx`
    insert into storage.objects (bucket_id, name, owner, owner_id, version)
    values (${o.bucketId}, ${o.name}, ${ownerUuid(o.sub)}, ${o.sub ?? null}, '1')`.execute();
}

/** Inserts or overwrites the object row; `RETURNING *` (so, like hosted, an upsert also needs SELECT). */
export function upsertObject(
  tx: Tx,
  o: {
    bucketId: string;
    name: string;
    sub?: string;
    version: string;
    metadata?: Record<string, unknown>;
    userMetadata?: Record<string, unknown> | null;
  },
): Promise<ObjectRow> {
  return tx<ObjectRow[]>`
    insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata)
    values (${o.bucketId}, ${o.name}, ${ownerUuid(o.sub)}, ${o.sub ?? null}, ${o.version},
            ${jsonb(tx, o.metadata)}, ${jsonb(tx, o.userMetadata)})
    on conflict (bucket_id, name) do update set
      metadata = excluded.metadata, user_metadata = excluded.user_metadata, version = excluded.version,
      owner = excluded.owner, owner_id = excluded.owner_id
    returning *`.execute().then(([row]) => row);
}

/** Renames / re-versions a row in place (move); UPDATE policies (USING and WITH CHECK) apply. */
export function updateObject(
  tx: Tx,
  bucketId: string,
  name: string,
  to: { bucketId: string; name: string; sub?: string; version: string; metadata?: Record<string, unknown> },
): Promise<ObjectRow | undefined> {
  return tx<ObjectRow[]>`
    update storage.objects set bucket_id = ${to.bucketId}, name = ${to.name}, version = ${to.version},
      owner = ${ownerUuid(to.sub)}, owner_id = ${to.sub ?? null},
      metadata = coalesce(${jsonb(tx, to.metadata)}, metadata)
    where bucket_id = ${bucketId} and name = ${name}
    returning *`.execute().then(([row]) => row);
}

export function deleteObjects(tx: Tx, bucketId: string, names: string[]): Promise<ObjectRow[]> {
  return tx<ObjectRow[]>`
    delete from storage.objects where bucket_id = ${bucketId} and name = any(${names}) returning *`.execute();
}

export function listObjectNames(tx: Tx, bucketId: string, limit: number): Promise<{ name: string }[]> {
  return tx<{ name: string }[]>`
    select name from storage.objects where bucket_id = ${bucketId} order by name collate "C" limit ${limit}`
    .execute();
}

/** Serialises writers of one object name for the rest of the transaction (hosted `waitObjectLock`). */
/**
 * The object's upload lock (hosted: `waitObjectLock`, an advisory lock under a lock timeout); not acquired in
 * time → LockTimeout (HTTP 400, 503 in the body), as hosted's `pg.ts` maps it.
 */
export async function lockObjectName(tx: Tx, bucketId: string, name: string): Promise<unknown> {
  try {
    return await tx`select pg_advisory_xact_lock(hashtextextended(${bucketId + "/" + name}, 0))`.execute();
  } catch (e) {
    if ((e as { code?: string }).code === "55P03") throw ERRORS.lockTimeout();
    throw e;
  }
}

/**
 * Hosted `storage.search`: the entries directly under `prefix` whose names (relative to the prefix) start
 * with `search` (case-insensitive): files with their columns, folders as a name with null columns.
 */
export function searchObjects(tx: Tx, bucketId: string, prefix: string, o: ListOptions) {
  const order = o.ascending ? tx`asc` : tx`desc`;
  const orderBy = o.sortColumn === "name"
    ? tx`lower(name) collate "C" ${order}`
    : tx`(id is not null), case when id is null then name end ${order}, ${tx(o.sortColumn)} ${order}`;
  return tx`
    with params as (select ${prefix}::text as p, ${prefix + o.search}::text as ps),
    matched as (
      select o.*, params.*, position('/' in substring(o.name from length(ps) + 1)) as slash
      from storage.objects o, params
      where o.bucket_id = ${bucketId} and lower(left(o.name, length(ps))) = lower(ps)
    ), entries as (
      select distinct substring(name from length(p) + 1 for length(ps) - length(p) + slash - 1) as name,
        null::uuid as id, null::timestamptz as updated_at, null::timestamptz as created_at,
        null::timestamptz as last_accessed_at, null::jsonb as metadata
      from matched where slash > 0
      union all
      select substring(name from length(p) + 1), id, updated_at, created_at, last_accessed_at, metadata
      from matched where slash = 0
    )
    select * from entries order by ${orderBy} limit ${Math.min(o.limit, 1500)} offset ${o.offset}`.execute();
}
