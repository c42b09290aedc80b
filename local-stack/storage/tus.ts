/**
 * Resumable uploads (TUS 1.0.0) at `/storage/v1/upload/resumable`, as hosted Storage serves them
 * (supabase/storage `src/http/routes/tus/index.ts`, `lifecycle.ts`), with the same server library, `@tus/server`,
 * over `@tus/file-store` (a directory under the stack's state dir) instead of hosted's S3 store.
 *
 * Invariants:
 * - The protocol is @tus/server's: creation (also with upload), HEAD for the offset, PATCH with
 *   `application/offset+octet-stream`, termination (not of finished uploads, `disableTerminationForFinishedUploads`
 *   as hosted), OPTIONS answered for browsers (CORS preflight with `allowedHeaders` Authorization, X-Upsert,
 *   Upload-Expires, ApiKey, x-signature as hosted, plus the Tus-* headers).
 * - `Upload-Metadata` names the object: bucketName, objectName (both required), contentType, cacheControl
 *   (seconds → `max-age=N`, anything else → `no-cache`, as hosted's `onCreate`), metadata (user metadata JSON).
 * - Auth as the standard upload: every request but OPTIONS needs a valid JWT (the router refuses others with
 *   hosted's AccessDenied); each request but OPTIONS and HEAD runs the rolled-back permission test as the caller
 *   (hosted's `canUpload` in `onIncomingRequest`), with `x-upsert` deciding insert or upsert.
 * - Size limit: the global limit at creation, the bucket's (capped by the global one) afterwards (hosted's
 *   `maxSize`); an allowed-MIME-type list is checked at creation.
 * - The `storage.objects` row is written only when the last byte is stored (`onUploadFinish` →
 *   upload.ts `commitVersion`, the same path as a standard upload, so the row triggers fire as for any upload),
 *   as hosted's `completeUpload` (lifecycle.ts:337). Before that, nothing of the object is visible.
 * - A refusal inside the TUS handlers is answered as hosted's `onResponseError` does: the status is the code the
 *   error carries (`getTusError`: 403, 404, 409, 413, …) and the body its message as text.
 *
 * Differences (docs/local-stack.md): the upload URL's id is an opaque uuid (hosted: base64url of
 * bucket/object/version); unfinished uploads never expire; the lock is in-process (@tus/server's MemoryLocker).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { join } from "node:path";
import { FileStore as TusFileStore } from "@tus/file-store";
import { Metadata, Server, type Upload } from "@tus/server";
import { ADMIN } from "./auth.ts";
import { mustBeAllowedMimeType } from "./body.ts";
import type { Ctx } from "./context.ts";
import { ERRORS, StorageError, toStorageError } from "./errors.ts";
import { mustBeValidBucketName, mustBeValidKey } from "./names.ts";
import { findBucket } from "./queries.ts";
import { commitVersion, mustBeAllowedToUpload } from "./upload.ts";

export const TUS_PATH = "/storage/v1/upload/resumable";

/** The request being handled: @tus/server's hooks get only the Request, the rest travels alongside. */
const current = new AsyncLocalStorage<Ctx>();

function ctxOf(): Ctx {
  const ctx = current.getStore();
  if (!ctx) throw new Error("TUS hook outside a request");
  return ctx;
}

/** What @tus/server sends for a thrown error: hosted's `getTusError` (status = the error's code, body = message). */
function tusError(e: unknown): { status_code: number; body: string } {
  if (e && typeof e === "object" && "status_code" in e && "body" in e) {
    return e as { status_code: number; body: string };
  }
  const error = toStorageError(e);
  return { status_code: error.statusCode, body: error.message };
}

/** Throws hosted's refusal in TUS form. */
async function asTus<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw tusError(e);
  }
}

function objectOf(metadata: Record<string, string | null> | undefined): { bucketId: string; name: string } {
  const bucketId = metadata?.bucketName ?? "";
  const name = metadata?.objectName ?? "";
  if (!bucketId || !name) throw ERRORS.invalidRequest("Metadata header is required");
  mustBeValidBucketName(bucketId);
  mustBeValidKey(name);
  return { bucketId, name };
}

function isUpsert(ctx: Ctx): boolean {
  return ctx.req.headers.get("x-upsert") === "true";
}

export interface Tus {
  handle(ctx: Ctx): Promise<Response>;
}

export function createTus(rootDir: string): Tus {
  const directory = join(rootDir, ".tus-uploads");
  Deno.mkdirSync(directory, { recursive: true });
  const datastore = new TusFileStore({ directory });

  const server = new Server({
    path: TUS_PATH,
    datastore,
    disableTerminationForFinishedUploads: true,
    allowedHeaders: ["Authorization", "X-Upsert", "Upload-Expires", "ApiKey", "x-signature"],
    respectForwardedHeaders: true,
    namingFunction: () => crypto.randomUUID(),
    maxSize: async (req, uploadId) => {
      const ctx = ctxOf();
      const global = ctx.services.fileSizeLimit;
      if (!uploadId) return global;
      // The creating POST names the upload before it is stored: its bucket is in the request's metadata.
      const metadata = req.method === "POST"
        ? Metadata.parse(req.headers.get("upload-metadata") ?? undefined)
        : (await datastore.getUpload(uploadId)).metadata;
      const bucketId = metadata?.bucketName ?? "";
      const bucket = await ctx.db.run(ADMIN, (tx) => findBucket(tx, bucketId));
      return Math.min(bucket?.file_size_limit ?? global, global);
    },
    // Every request but OPTIONS and HEAD: may the caller write this object (hosted: onIncomingRequest → canUpload)?
    onIncomingRequest: (req, uploadId) =>
      asTus(async () => {
        if (req.method === "OPTIONS" || req.method === "HEAD" || req.method === "POST") return;
        const ctx = ctxOf();
        const upload = await datastore.getUpload(uploadId);
        const { bucketId, name } = objectOf(upload.metadata);
        await mustBeAllowedToUpload(ctx.db, ctx.caller, {
          bucketId,
          name,
          owner: ctx.caller.sub,
          upsert: isUpsert(ctx),
        });
      }),
    // Creation: the object named, the bucket found, the MIME type allowed, the caller allowed (hosted: onCreate
    // plus onIncomingRequest's canUpload for the POST).
    onUploadCreate: (_req, upload: Upload) =>
      asTus(async () => {
        const ctx = ctxOf();
        const metadata = { ...(upload.metadata ?? {}) };
        const { bucketId, name } = objectOf(metadata);
        const bucket = await ctx.db.run(ADMIN, (tx) => findBucket(tx, bucketId));
        if (!bucket) throw ERRORS.noSuchBucket();
        metadata.cacheControl = /^-?\d+$/.test(metadata.cacheControl ?? "")
          ? `max-age=${metadata.cacheControl}`
          : "no-cache";
        if (metadata.contentType) mustBeAllowedMimeType(metadata.contentType, bucket.allowed_mime_types);
        await mustBeAllowedToUpload(ctx.db, ctx.caller, {
          bucketId,
          name,
          owner: ctx.caller.sub,
          upsert: isUpsert(ctx),
        });
        return { metadata };
      }),
    // The last byte is stored: now, and only now, the object row (hosted: onUploadFinish → completeUpload).
    onUploadFinish: (_req, upload: Upload) =>
      asTus(async () => {
        const ctx = ctxOf();
        const { bucketId, name } = objectOf(upload.metadata);
        const version = crypto.randomUUID();
        const file = await Deno.open(join(directory, upload.id), { read: true });
        const written = await ctx.services.files.write(
          bucketId,
          version,
          file.readable,
          Number.MAX_SAFE_INTEGER,
        );
        let userMetadata: Record<string, unknown> = {};
        try {
          userMetadata = upload.metadata?.metadata ? JSON.parse(upload.metadata.metadata) : {};
        } catch {
          // hosted ignores user metadata it cannot parse
        }
        await commitVersion(ctx, {
          bucketId,
          name,
          owner: ctx.caller.sub,
          version,
          metadata: {
            eTag: `"${written.md5}"`,
            size: written.size,
            mimetype: upload.metadata?.contentType || "application/octet-stream",
            cacheControl: upload.metadata?.cacheControl ?? "no-cache",
            lastModified: written.mtime.toISOString(),
            contentLength: written.size,
            httpStatusCode: 200,
          },
          userMetadata,
          upsert: isUpsert(ctx),
        });
        return { headers: { "Tus-Complete": "1" } };
      }),
    onResponseError: (_req, e) => tusError(e),
  });

  return {
    handle: (ctx) =>
      current.run(ctx, async () => {
        try {
          return await server.handleWeb(ctx.req);
        } catch (e) {
          throw e instanceof StorageError ? e : toStorageError(e);
        }
      }),
  };
}
