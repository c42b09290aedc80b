/**
 * Object management: `POST /object/list/{bucket}`, `DELETE /object/{bucket}/{path}`,
 * `DELETE /object/{bucket}` `{prefixes}`, `POST /object/move`, `POST /object/copy`
 * (supabase/storage `listObjects.ts`, `deleteObject(s).ts`, `moveObject.ts`, `copyObject.ts`, `object.ts`).
 *
 * Invariants:
 * - Deletes run as the caller (RLS decides which rows go) with `storage.allow_delete_query = 'true'` set
 *   locally; bytes are removed only after the transaction commits.
 * - Move and copy test the caller's permission with a rolled-back write first, copy the bytes to a NEW
 *   version, then commit the row change as the service role; a failed commit removes the new bytes, a
 *   successful one removes the replaced version's bytes.
 */
import { ADMIN } from "./auth.ts";
import { metadataHeader } from "./body.ts";
import { type Ctx, json, jsonBody } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { mustBeValidKey } from "./names.ts";
import {
  deleteObjects,
  findObject,
  type ListOptions,
  lockObjectName,
  searchObjects,
  updateObject,
  upsertObject,
} from "./queries.ts";
import { mustBeAllowedToUpload } from "./upload.ts";

const SORT_COLUMNS = ["name", "updated_at", "created_at", "last_accessed_at"];

export async function list(ctx: Ctx): Promise<Response> {
  const body = await jsonBody(ctx.req);
  const { limit = 100, offset = 0, search = "" } = body as {
    limit?: number;
    offset?: number;
    search?: string;
  };
  const sortBy = (body.sortBy ?? {}) as { column?: string; order?: string };
  if (typeof body.prefix !== "string") {
    throw ERRORS.invalidRequest("body must have required property 'prefix'");
  }
  if (!Number.isInteger(limit) || limit < 1 || !Number.isInteger(offset) || offset < 0) {
    throw ERRORS.invalidRequest("body/limit must be >= 1 and body/offset >= 0");
  }
  const column = sortBy.column ?? "name";
  if (!SORT_COLUMNS.includes(column) || !["asc", "desc", undefined].includes(sortBy.order)) {
    throw ERRORS.invalidRequest("body/sortBy must name a sortable column and asc|desc");
  }
  const prefix = body.prefix && !body.prefix.endsWith("/") ? `${body.prefix}/` : body.prefix;
  const options: ListOptions = {
    limit,
    offset,
    search: String(search),
    sortColumn: column as ListOptions["sortColumn"],
    ascending: sortBy.order !== "desc",
  };
  return json(await ctx.db.run(ctx.caller, (tx) => searchObjects(tx, ctx.params.bucket, prefix, options)));
}

export async function removeOne(ctx: Ctx): Promise<Response> {
  const { bucket, path } = ctx.params;
  const [row] = await ctx.db.run(ctx.caller, (tx) => deleteObjects(tx, bucket, [path]), {
    allowDelete: true,
  });
  if (!row) throw ERRORS.noSuchKey();
  await ctx.services.files.remove(bucket, row.version);
  return json({ message: "Successfully deleted" });
}

export async function removeMany(ctx: Ctx): Promise<Response> {
  const { prefixes } = await jsonBody(ctx.req);
  if (!Array.isArray(prefixes) || prefixes.length === 0 || !prefixes.every((p) => typeof p === "string")) {
    throw ERRORS.invalidRequest("body/prefixes must be a non-empty array of strings");
  }
  if (prefixes.length > 1000) throw ERRORS.invalidRequest("At most 1000 objects can be deleted per request.");
  const { bucket } = ctx.params;
  const rows = await ctx.db.run(ctx.caller, (tx) => deleteObjects(tx, bucket, prefixes), {
    allowDelete: true,
  });
  await Promise.all(rows.map((row) => ctx.services.files.remove(bucket, row.version)));
  return json(rows);
}

interface Transfer {
  bucketId: string;
  sourceKey: string;
  destinationBucket: string;
  destinationKey: string;
}

async function transferOf(ctx: Ctx): Promise<Transfer & { body: Record<string, unknown> }> {
  const body = await jsonBody(ctx.req);
  for (const field of ["bucketId", "sourceKey", "destinationKey"]) {
    if (typeof body[field] !== "string") {
      throw ERRORS.invalidRequest(`body must have required property '${field}'`);
    }
  }
  const { bucketId, sourceKey, destinationKey } = body as Record<string, string>;
  mustBeValidKey(destinationKey);
  const destinationBucket = typeof body.destinationBucket === "string" ? body.destinationBucket : bucketId;
  return { bucketId, sourceKey, destinationBucket, destinationKey, body };
}

export async function move(ctx: Ctx): Promise<Response> {
  const { bucketId, sourceKey, destinationBucket, destinationKey } = await transferOf(ctx);
  const { db, caller, services: { files } } = ctx;
  const version = crypto.randomUUID();
  const to = { bucketId: destinationBucket, name: destinationKey, sub: caller.sub, version };
  await db.probe(caller, async (tx) => {
    if (!await findObject(tx, bucketId, sourceKey)) throw ERRORS.noSuchKey();
    if (!await updateObject(tx, bucketId, sourceKey, to)) throw ERRORS.noSuchKey();
  });
  const source = await db.run(ADMIN, (tx) => findObject(tx, bucketId, sourceKey));
  if (!source?.version) throw ERRORS.noSuchKey();
  if (bucketId === destinationBucket && sourceKey === destinationKey) {
    return json({ message: "Successfully moved", Id: source.id, Key: destinationKey });
  }
  await files.copy({ bucketId, version: source.version }, { bucketId: destinationBucket, version });
  let moved;
  try {
    moved = await db.run(ADMIN, async (tx) => {
      await lockObjectName(tx, destinationBucket, destinationKey);
      const current = await findObject(tx, bucketId, sourceKey, true);
      if (!current) throw ERRORS.noSuchKey();
      const metadata = { ...current.metadata, lastModified: new Date().toISOString() };
      const row = await updateObject(tx, bucketId, sourceKey, { ...to, metadata });
      return { row: row!, previousVersion: current.version };
    }, { lockTimeout: "5s" });
  } catch (e) {
    await files.remove(destinationBucket, version);
    throw e;
  }
  await files.remove(bucketId, moved.previousVersion);
  return json({ message: "Successfully moved", Id: moved.row.id, Key: destinationKey });
}

export async function copy(ctx: Ctx): Promise<Response> {
  const { bucketId, sourceKey, destinationBucket, destinationKey, body } = await transferOf(ctx);
  const { db, caller, services: { files } } = ctx;
  const copyMetadata = body.copyMetadata !== false;
  const source = await db.run(caller, (tx) => findObject(tx, bucketId, sourceKey));
  if (!source?.version) throw ERRORS.noSuchKey();
  const upsert = ctx.req.headers.get("x-upsert") === "true";
  const owner = caller.sub;
  await mustBeAllowedToUpload(db, caller, {
    bucketId: destinationBucket,
    name: destinationKey,
    owner,
    upsert,
  });
  const version = crypto.randomUUID();
  await files.copy({ bucketId, version: source.version }, { bucketId: destinationBucket, version });
  const overrides = copyMetadata ? {} : (body.metadata as Record<string, unknown> | undefined) ?? {};
  const metadata = { ...source.metadata, ...overrides, lastModified: new Date().toISOString() };
  let copied;
  try {
    copied = await db.run(ADMIN, async (tx) => {
      await lockObjectName(tx, destinationBucket, destinationKey);
      const existing = await findObject(tx, destinationBucket, destinationKey, true);
      const row = await upsertObject(tx, {
        bucketId: destinationBucket,
        name: destinationKey,
        sub: owner,
        version,
        metadata,
        userMetadata: copyMetadata ? source.user_metadata : metadataHeader(ctx.req),
      });
      return { row, previousVersion: existing?.version };
    }, { lockTimeout: "5s" });
  } catch (e) {
    await files.remove(destinationBucket, version);
    throw e;
  }
  await files.remove(destinationBucket, copied.previousVersion);
  return json({ Id: copied.row.id, Key: `${destinationBucket}/${destinationKey}`, ...copied.row });
}
