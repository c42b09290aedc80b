/**
 * Buckets: `POST /bucket`, `GET /bucket`, `GET|PUT|DELETE /bucket/{id}`, `POST /bucket/{id}/empty`
 * (supabase/storage `src/http/routes/bucket/*.ts`, `src/storage/storage.ts`), plus the config.toml seeding
 * the gateway runs at start.
 *
 * Invariants:
 * - Reads and writes run as the caller, so storage.buckets RLS applies (the service role bypasses it).
 * - `file_size_limit` accepts bytes or an API size string ("100MB", decimal) and may not exceed the global
 *   limit (EntityTooLarge); `allowed_mime_types` entries must look like `type/subtype` or end in `*`.
 * - Deleting a bucket that still holds objects fails with ResourceNotEmpty; emptying deletes only what RLS
 *   lets the caller delete and reports the rest as AccessDenied, removing bytes after each commit.
 */
import { ADMIN } from "./auth.ts";
import { type Ctx, json, jsonBody } from "./context.ts";
import type { Db } from "./db.ts";
import { ERRORS, StorageError } from "./errors.ts";
import { mustBeValidBucketName, parseApiSize } from "./names.ts";
import {
  type BucketFields,
  type BucketRow,
  deleteBucket,
  deleteObjects,
  findBucket,
  hasObjects,
  insertBucket,
  listBuckets,
  listObjectNames,
  updateBucket,
  upsertBucket,
} from "./queries.ts";

export interface BucketSpec {
  id: string;
  public?: boolean;
  fileSizeLimit?: number | string | null;
  allowedMimeTypes?: string[] | null;
}

const MIME_PATTERN = /^([a-zA-Z0-9\-+.]+)\/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?$|\*$/;
const BUCKET_SORT_COLUMNS = ["id", "name", "created_at", "updated_at"];

function sizeLimit(value: unknown, globalLimit: number): number | null | undefined {
  if (value === undefined || value === null) return value;
  const bytes = typeof value === "string" ? parseApiSize(value) : Number(value);
  if (!Number.isInteger(bytes) || bytes < 0) throw ERRORS.invalidFileSizeLimit();
  if (bytes > globalLimit) throw ERRORS.entityTooLarge();
  return bytes;
}

function mimeTypes(value: unknown): string[] | null | undefined {
  if (value === undefined || value === null) return value;
  if (!Array.isArray(value)) throw ERRORS.invalidRequest("body/allowed_mime_types must be array");
  const types = value.filter((t) => t);
  for (const t of types) {
    if (typeof t !== "string" || t.length > 1000 || !MIME_PATTERN.test(t)) {
      throw ERRORS.invalidMimeType(String(t));
    }
  }
  return types;
}

function fieldsOf(body: Record<string, unknown>, globalLimit: number): BucketFields {
  if (body.public !== undefined && typeof body.public !== "boolean") {
    throw ERRORS.invalidRequest("body/public must be boolean");
  }
  return {
    public: body.public as boolean | undefined,
    file_size_limit: sizeLimit(body.file_size_limit, globalLimit),
    allowed_mime_types: mimeTypes(body.allowed_mime_types),
  };
}

function shape(row: BucketRow) {
  const { owner_id: _ownerId, ...bucket } = row;
  return bucket;
}

export async function createBucket(ctx: Ctx): Promise<Response> {
  const body = await jsonBody(ctx.req);
  if (typeof body.name !== "string") throw ERRORS.invalidRequest("body must have required property 'name'");
  const name = body.name;
  const id = typeof body.id === "string" && body.id ? body.id : name;
  mustBeValidBucketName(name);
  mustBeValidBucketName(id);
  const fields = fieldsOf(body, ctx.services.fileSizeLimit);
  try {
    await ctx.db.run(ctx.caller, (tx) =>
      insertBucket(tx, {
        id,
        name,
        sub: ctx.caller.sub,
        public: fields.public ?? false,
        file_size_limit: fields.file_size_limit ?? null,
        allowed_mime_types: fields.allowed_mime_types ?? null,
      }));
  } catch (e) {
    if (e instanceof StorageError && e.code === "ResourceAlreadyExists") throw ERRORS.bucketAlreadyExists();
    throw e;
  }
  return json({ name });
}

export async function getBuckets(ctx: Ctx): Promise<Response> {
  const q = ctx.url.searchParams;
  const sortColumn = q.get("sortColumn") ?? "name";
  if (!BUCKET_SORT_COLUMNS.includes(sortColumn)) {
    throw ERRORS.invalidRequest("querystring/sortColumn is invalid");
  }
  const limit = q.has("limit") ? Number(q.get("limit")) : undefined;
  const offset = Number(q.get("offset") ?? 0);
  if ((limit !== undefined && !(limit >= 0)) || !(offset >= 0)) {
    throw ERRORS.invalidRequest("querystring/limit and offset must be >= 0");
  }
  const rows = await ctx.db.run(ctx.caller, (tx) =>
    listBuckets(tx, {
      limit,
      offset,
      search: q.get("search") ?? "",
      sortColumn,
      ascending: q.get("sortOrder") !== "desc",
    }));
  return json(rows);
}

export async function getBucket(ctx: Ctx): Promise<Response> {
  const row = await ctx.db.run(ctx.caller, (tx) => findBucket(tx, ctx.params.id));
  if (!row) throw ERRORS.noSuchBucket();
  return json(shape(row));
}

export async function putBucket(ctx: Ctx): Promise<Response> {
  const { id } = ctx.params;
  mustBeValidBucketName(id);
  const fields = fieldsOf(await jsonBody(ctx.req), ctx.services.fileSizeLimit);
  if (await ctx.db.run(ctx.caller, (tx) => updateBucket(tx, id, fields)) === 0) throw ERRORS.noSuchBucket();
  return json({ message: "Successfully updated" });
}

export async function removeBucket(ctx: Ctx): Promise<Response> {
  const { id } = ctx.params;
  const nonEmpty = await ctx.db.run(ADMIN, async (tx) => {
    if (!await findBucket(tx, id)) throw ERRORS.noSuchBucket();
    return hasObjects(tx, id);
  });
  if (nonEmpty) throw ERRORS.bucketNotEmpty();
  const deleted = await ctx.db.run(ctx.caller, (tx) => deleteBucket(tx, id), { allowDelete: true });
  if (deleted === 0) throw ERRORS.noSuchBucket();
  return json({ message: "Successfully deleted" });
}

export async function emptyBucket(ctx: Ctx): Promise<Response> {
  const { id } = ctx.params;
  if (!await ctx.db.run(ctx.caller, (tx) => findBucket(tx, id))) throw ERRORS.noSuchBucket();
  for (;;) {
    const { listed, deleted } = await ctx.db.run(ctx.caller, async (tx) => {
      const listed = (await listObjectNames(tx, id, 1000)).map((r) => r.name);
      return { listed, deleted: listed.length ? await deleteObjects(tx, id, listed) : [] };
    }, { allowDelete: true });
    await Promise.all(deleted.map((row) => ctx.services.files.remove(id, row.version)));
    if (listed.length === 0) break;
    if (deleted.length !== listed.length) {
      const gone = new Set(deleted.map((r) => r.name));
      const kept = listed.filter((name) => !gone.has(name));
      throw ERRORS.accessDenied(
        `Cannot delete: ${kept.join(" ,")}, you may have SELECT but not DELETE permissions`,
      );
    }
  }
  return json({ message: "Successfully emptied" });
}

/** Creates or reconfigures buckets as the service role (config.toml seeding, like the CLI at start). */
export async function applyBuckets(db: Db, specs: BucketSpec[], globalLimit: number): Promise<void> {
  for (const spec of specs) {
    mustBeValidBucketName(spec.id);
    const fields = fieldsOf({
      public: spec.public ?? false,
      file_size_limit: spec.fileSizeLimit ?? null,
      allowed_mime_types: spec.allowedMimeTypes ?? null,
    }, globalLimit);
    await db.run(ADMIN, (tx) =>
      upsertBucket(tx, {
        id: spec.id,
        public: fields.public!,
        file_size_limit: fields.file_size_limit ?? null,
        allowed_mime_types: fields.allowed_mime_types ?? null,
      }));
  }
}
