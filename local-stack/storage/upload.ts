/**
 * The upload pipeline, in hosted Storage's order (supabase/storage `src/storage/uploader.ts`):
 *   1. permission test — the INSERT (or INSERT … ON CONFLICT DO UPDATE for upserts) runs as the caller in a
 *      transaction that is always rolled back, so RLS decides before any byte moves;
 *   2. the body streams to disk under a NEW version uuid, enforcing the size limit and allowed MIME types;
 *   3. only then, one transaction as the service role locks the name, reads the current version and upserts
 *      the row with the final metadata (new object → INSERT triggers, overwrite → UPDATE triggers);
 *   4. after commit the previous version's bytes are removed.
 *
 * Invariants:
 * - If step 2 or 3 fails, the new version's bytes are deleted and the error is returned: no row without
 *   bytes, no bytes without a row (except a crash between 2 and 3, as hosted).
 * - When any row trigger for the final upsert runs, the object's bytes are complete on disk.
 * - `metadata` has hosted's keys: eTag, size, mimetype, cacheControl, lastModified, contentLength,
 *   httpStatusCode.
 */
import { ADMIN, type Caller } from "./auth.ts";
import { mustBeAllowedMimeType, readUploadBody } from "./body.ts";
import type { Ctx } from "./context.ts";
import type { Db } from "./db.ts";
import { ERRORS, StorageError } from "./errors.ts";
import { isEmptyFolder, mustBeValidKey } from "./names.ts";
import { findBucket, findObject, insertObjectProbe, lockObjectName, upsertObject } from "./queries.ts";

export interface UploadTarget {
  bucketId: string;
  name: string;
  upsert: boolean;
  owner: string | undefined;
  /** Whose RLS the permission test runs under (the caller; the service role for signed-URL uploads). */
  permissionOf: Caller;
}

/** Step 1: the rolled-back INSERT/UPSERT that lets RLS refuse before any bytes are read. */
export async function mustBeAllowedToUpload(
  db: Db,
  caller: Caller,
  o: { bucketId: string; name: string; owner: string | undefined; upsert: boolean },
): Promise<void> {
  try {
    await db.probe(
      caller,
      (tx) =>
        o.upsert
          ? upsertObject(tx, { bucketId: o.bucketId, name: o.name, sub: o.owner, version: "1" })
          : insertObjectProbe(tx, { bucketId: o.bucketId, name: o.name, sub: o.owner }),
    );
  } catch (e) {
    if (e instanceof StorageError && e.code === "ResourceAlreadyExists") throw ERRORS.keyAlreadyExists();
    throw e;
  }
}

export async function uploadObject(ctx: Ctx, target: UploadTarget): Promise<{ Key: string; Id: string }> {
  const { db, services: { files, fileSizeLimit } } = ctx;
  const { bucketId, name, owner } = target;
  mustBeValidKey(name);
  const bucket = await db.run(ADMIN, (tx) => findBucket(tx, bucketId));
  if (!bucket) throw ERRORS.noSuchBucket();

  await mustBeAllowedToUpload(db, target.permissionOf, { bucketId, name, owner, upsert: target.upsert });

  const limit = isEmptyFolder(name) ? 0 : Math.min(fileSizeLimit, bucket.file_size_limit ?? Infinity);
  const file = await readUploadBody(ctx.req, limit);
  if (!isEmptyFolder(name)) mustBeAllowedMimeType(file.mimeType, bucket.allowed_mime_types);

  const version = crypto.randomUUID();
  const written = await files.write(bucketId, version, file.body, limit);
  const metadata = {
    eTag: `"${written.md5}"`,
    size: written.size,
    mimetype: file.mimeType,
    cacheControl: file.cacheControl,
    lastModified: written.mtime.toISOString(),
    contentLength: written.size,
    httpStatusCode: 200,
  };
  const row = await commitVersion(ctx, {
    bucketId,
    name,
    owner,
    version,
    metadata,
    userMetadata: { ...file.userMetadata },
    upsert: target.upsert,
  });
  return { Key: `${bucketId}/${name}`, Id: row.id };
}

/**
 * Step 3 and 4 for bytes already stored under `version` (standard uploads and the last byte of a TUS upload):
 * one transaction as the service role locks the name, reads the current version and upserts the row (new
 * object → INSERT triggers, overwrite → UPDATE triggers); then the previous version's bytes are removed. Without
 * `upsert`, an existing object refuses the row (KeyAlreadyExists). On failure the new bytes are removed.
 */
export async function commitVersion(
  ctx: Pick<Ctx, "db" | "services">,
  o: {
    bucketId: string;
    name: string;
    owner: string | undefined;
    version: string;
    metadata: Record<string, unknown>;
    userMetadata: Record<string, unknown>;
    upsert: boolean;
  },
): Promise<{ id: string }> {
  const { db, services: { files } } = ctx;
  const { bucketId, name, version } = o;
  let completed;
  try {
    completed = await db.run(ADMIN, async (tx) => {
      await lockObjectName(tx, bucketId, name);
      const previous = await findObject(tx, bucketId, name, true);
      if (previous && !o.upsert) throw ERRORS.keyAlreadyExists();
      const row = await upsertObject(tx, {
        bucketId,
        name,
        sub: o.owner,
        version,
        metadata: o.metadata,
        userMetadata: o.userMetadata,
      });
      return { row, previousVersion: previous?.version };
    }, { lockTimeout: "5s" });
  } catch (e) {
    await files.remove(bucketId, version);
    throw e;
  }
  if (completed.previousVersion !== version) await files.remove(bucketId, completed.previousVersion);
  return { id: completed.row.id };
}
