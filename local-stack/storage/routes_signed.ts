/**
 * Signed URLs (supabase/storage `getSignedURL.ts`, `getSignedURLs.ts`, `getSignedObject.ts`,
 * `getSignedUploadURL.ts`, `uploadSignedObject.ts`, `src/storage/object.ts` sign*):
 * - `POST /object/sign/{bucket}/{path}` `{expiresIn}` → `{signedURL: "/object/sign/<bucket>/<path>?token=…"}`
 * - `POST /object/sign/{bucket}` `{expiresIn, paths}` → `[{error, path, signedURL}]`
 * - `GET /object/sign/{bucket}/{path}?token=` → the bytes (Range honoured, `Expires` = token expiry)
 * - `POST /object/upload/sign/{bucket}/{path}` → `{url, token}` (2 h); `PUT` the same path `?token=` uploads.
 *
 * Invariants:
 * - Tokens are HS256 JWTs signed with the project JWT secret; `url` = `<bucket>/<name>` must equal the
 *   requested path exactly. A token never carries a `role`.
 * - Signing requires the object to be visible to the caller (RLS); serving a valid token reads as the
 *   service role, as hosted.
 */
import { ADMIN, verifySigned } from "./auth.ts";
import { type Ctx, json, jsonBody } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { signJwt } from "../keys.ts";
import { mustBeValidKey } from "./names.ts";
import { findObject, findObjectNames } from "./queries.ts";
import { renderAsset } from "./render.ts";
import { mustBeAllowedToUpload, uploadObject } from "./upload.ts";

const UPLOAD_URL_SECONDS = 2 * 60 * 60;

function sign(claims: Record<string, unknown>, expiresIn: number): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return signJwt({ ...claims, iat, exp: iat + expiresIn });
}

function expiresInOf(body: Record<string, unknown>): number {
  const { expiresIn } = body;
  if (typeof expiresIn !== "number" || !Number.isInteger(expiresIn) || expiresIn < 1) {
    throw ERRORS.invalidRequest("body/expiresIn must be integer >= 1");
  }
  return expiresIn;
}

async function verified(ctx: Ctx): Promise<Record<string, unknown>> {
  const claims = await verifySigned(ctx.url.searchParams.get("token") ?? "");
  if (typeof claims === "string") throw ERRORS.invalidJwt(claims);
  if (claims.url !== `${ctx.params.bucket}/${ctx.params.path}`) throw ERRORS.invalidSignature();
  return claims;
}

export async function signUrl(ctx: Ctx): Promise<Response> {
  const { bucket, path } = ctx.params;
  const expiresIn = expiresInOf(await jsonBody(ctx.req));
  mustBeValidKey(path);
  if (!await ctx.db.run(ctx.caller, (tx) => findObject(tx, bucket, path))) throw ERRORS.noSuchKey();
  const token = await sign({ url: `${bucket}/${path}` }, expiresIn);
  return json({ signedURL: `/object/sign/${bucket}/${path}?token=${token}` });
}

export async function signUrls(ctx: Ctx): Promise<Response> {
  const { bucket } = ctx.params;
  const body = await jsonBody(ctx.req);
  const expiresIn = expiresInOf(body);
  const paths = body.paths;
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === "string")) {
    throw ERRORS.invalidRequest("body/paths must be a non-empty array of strings");
  }
  const visible = new Set(
    (await ctx.db.run(ctx.caller, (tx) => findObjectNames(tx, bucket, paths))).map((r) => r.name),
  );
  return json(
    await Promise.all(paths.map(async (path: string) => {
      if (!visible.has(path)) {
        return {
          error: "Either the object does not exist or you do not have access to it",
          path,
          signedURL: null,
        };
      }
      const token = await sign({ url: `${bucket}/${path}` }, expiresIn);
      return { error: null, path, signedURL: `/object/sign/${bucket}/${path}?token=${token}` };
    })),
  );
}

export async function getSigned(ctx: Ctx): Promise<Response> {
  const claims = await verified(ctx);
  const { bucket, path } = ctx.params;
  const obj = await ctx.db.run(ADMIN, (tx) => findObject(tx, bucket, path));
  if (!obj) throw ERRORS.noSuchKey();
  return renderAsset(ctx, obj, {
    download: ctx.url.searchParams.get("download"),
    expires: new Date(Number(claims.exp) * 1000),
  });
}

export async function signUploadUrl(ctx: Ctx): Promise<Response> {
  const { bucket, path } = ctx.params;
  mustBeValidKey(path);
  const upsert = ctx.req.headers.get("x-upsert") === "true";
  const owner = ctx.caller.sub;
  await mustBeAllowedToUpload(ctx.db, ctx.caller, { bucketId: bucket, name: path, owner, upsert });
  const token = await sign({ owner, url: `${bucket}/${path}`, upsert }, UPLOAD_URL_SECONDS);
  return json({ url: `/object/upload/sign/${bucket}/${path}?token=${token}`, token });
}

export async function uploadSigned(ctx: Ctx): Promise<Response> {
  const claims = await verified(ctx);
  const { Key } = await uploadObject(ctx, {
    bucketId: ctx.params.bucket,
    name: ctx.params.path,
    upsert: claims.upsert === true,
    owner: typeof claims.owner === "string" ? claims.owner : undefined,
    permissionOf: ADMIN,
  });
  return json({ Key });
}
