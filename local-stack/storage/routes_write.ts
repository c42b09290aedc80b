/**
 * Uploads: `POST /object/{bucket}/{path}` (create; `x-upsert: true` overwrites) and
 * `PUT /object/{bucket}/{path}` (update = upsert), answering `{ Key: "<bucket>/<path>", Id: "<uuid>" }`
 * (supabase/storage `createObject.ts`, `updateObject.ts`). The pipeline itself lives in upload.ts.
 *
 * Invariant: the owner is the caller's JWT `sub` (none for keys without one, e.g. the service key).
 */
import { type Ctx, json } from "./context.ts";
import { uploadObject } from "./upload.ts";

export const upload = (mode: "create" | "update") => async (ctx: Ctx) =>
  json(
    await uploadObject(ctx, {
      bucketId: ctx.params.bucket,
      name: ctx.params.path,
      upsert: mode === "update" || ctx.req.headers.get("x-upsert") === "true",
      owner: ctx.caller.sub,
      permissionOf: ctx.caller,
    }),
  );
