/**
 * Reading objects: `GET|HEAD /object/{bucket}/{path}`, `/object/authenticated/…`, `/object/public/…` and
 * `GET /object/info[/authenticated|/public]/…` (supabase/storage `src/http/routes/object/getObject.ts`,
 * `getPublicObject.ts`, `getObjectInfo.ts`).
 *
 * Invariants (hosted's visibility rules):
 * - The bucket is looked up as the service role. An unauthenticated request (generic routes accept a
 *   missing/invalid JWT) may only read public buckets; otherwise "Bucket not found".
 * - In a public bucket, or on a `public` route (bucket must be public), the object is found as the service
 *   role; in a private bucket it must be visible to the caller under RLS, else "Object not found".
 * - All lookups share one pipelined transaction (service-role reads, then a switch to the caller's scope):
 *   these routes carry the pipeline's parallel range reads, so round trips matter.
 */
import { ADMIN } from "./auth.ts";
import type { Ctx } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { mustBeValidKey } from "./names.ts";
import { findBucket, findObject, type ObjectRow } from "./queries.ts";
import { renderAsset, renderHead, renderInfo } from "./render.ts";

export type Access = "generic" | "authenticated" | "public";

export async function findReadableObject(ctx: Ctx, access: Access): Promise<ObjectRow> {
  const { bucket: bucketId, path: name } = ctx.params;
  mustBeValidKey(name);
  const { db, caller } = ctx;
  const [bucket, asAdmin, asCaller] = await db.run(ADMIN, (tx) => {
    // Statements are sent in call order: two service-role reads, the scope switch, the caller's read.
    const bucket = findBucket(tx, bucketId);
    const asAdmin = findObject(tx, bucketId, name);
    let asCaller: Promise<ObjectRow | undefined> = Promise.resolve(undefined);
    if (access !== "public") {
      const switched = db.rescope(tx, caller);
      const visible = findObject(tx, bucketId, name);
      asCaller = Promise.all([switched, visible]).then(([, row]) => row);
    }
    return Promise.all([bucket, asAdmin, asCaller]);
  });
  if (!bucket || (!bucket.public && (access === "public" || !caller.authenticated))) {
    throw ERRORS.noSuchBucket();
  }
  const obj = bucket.public ? asAdmin : asCaller;
  if (!obj) throw ERRORS.noSuchKey();
  return obj;
}

export const download = (access: Access) => async (ctx: Ctx) =>
  renderAsset(ctx, await findReadableObject(ctx, access), { download: ctx.url.searchParams.get("download") });

export const head = (access: Access) => async (ctx: Ctx) =>
  renderHead(ctx, await findReadableObject(ctx, access));

export const info = (access: Access) => async (ctx: Ctx) => renderInfo(await findReadableObject(ctx, access));
