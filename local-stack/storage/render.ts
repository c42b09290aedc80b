/**
 * Turns a visible object row into the download, HEAD or info response hosted Storage sends
 * (supabase/storage `src/storage/renderer/renderer.ts`, `head.ts`, `info.ts`).
 *
 * Invariants:
 * - Downloads stream from disk (files.ts) and honour a single `Range` (206 + `Content-Range: bytes a-b/total`,
 *   an unsatisfiable one as the S3 backend answers it, errors.ts); every download says `Accept-Ranges: bytes`.
 * - Size and byte ranges come from the stored file; Content-Type / Cache-Control / ETag / Last-Modified
 *   from the row's metadata, as hosted. `text/html` is served as `text/plain`, as hosted.
 * - HEAD and info never touch the bytes.
 */
import type { Ctx } from "./context.ts";
import { ERRORS } from "./errors.ts";
import type { ObjectRow } from "./queries.ts";
import { parseRange } from "./range.ts";

export interface AssetOptions {
  /** `?download=` value: "" → attachment, a name → attachment with that file name. */
  download: string | null;
  /** Signed URLs send `Expires` (token expiry) instead of the object's Cache-Control. */
  expires?: Date;
}

export async function renderAsset(ctx: Ctx, current: ObjectRow, options: AssetOptions): Promise<Response> {
  const { files } = ctx.services;
  if (!current.version) throw ERRORS.storedBytesMissing();
  // Local fault injection (faults.ts): a "stale" plan answers from an earlier version's cached copy.
  const { row: obj, bytes } = await ctx.services.faults.served(current);
  const size = await files.size(bytes.bucketId, bytes.version);
  const headers = baseHeaders(obj, options.expires);
  if (options.download !== null) headers.set("Content-Disposition", disposition(options.download));
  const etag = headers.get("ETag");
  if (etag && ctx.req.headers.get("if-none-match") === etag) {
    return new Response(null, { status: 304, headers });
  }

  const fault = ctx.services.faults.onRead(obj.bucket_id, obj.name); // local fault injection (faults.ts)
  const range = parseRange(ctx.req.headers.get("range"), size);
  if (range.kind === "unsatisfiable") throw ERRORS.invalidRange();
  const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, size - 1];
  headers.set("Content-Length", String(end - start + 1));
  if (range.kind === "partial") headers.set("Content-Range", `bytes ${start}-${end}/${size}`);
  const body = await files.read(bytes.bucketId, bytes.version, start, end);
  const response = new Response(body, { status: range.kind === "partial" ? 206 : 200, headers });
  return fault ? fault(response) : response;
}

/** HEAD: headers from the row's metadata only (a "stale" fault's cached copy answers HEAD too). */
export async function renderHead(ctx: Ctx, current: ObjectRow): Promise<Response> {
  const { row: obj } = await ctx.services.faults.served(current);
  const headers = baseHeaders(obj);
  const length = obj.metadata?.contentLength ?? obj.metadata?.size;
  if (length !== undefined) headers.set("Content-Length", String(length));
  return new Response(null, { status: 200, headers });
}

/** GET /object/info/…: the row as hosted's InfoRenderer shapes it. */
export function renderInfo(obj: ObjectRow): Response {
  const meta = obj.metadata ?? {};
  const body = {
    id: obj.id,
    name: obj.name,
    version: obj.version,
    bucket_id: obj.bucket_id,
    size: meta.size ?? null,
    content_type: meta.mimetype ?? null,
    cache_control: meta.cacheControl ?? null,
    etag: meta.eTag ?? null,
    metadata: obj.user_metadata,
    last_modified: obj.updated_at,
    created_at: obj.created_at,
  };
  const headers = new Headers({ "Content-Type": "application/json" });
  if (typeof meta.eTag === "string") headers.set("ETag", meta.eTag);
  if (typeof meta.cacheControl === "string") headers.set("Cache-Control", meta.cacheControl);
  const lastModified = httpDate(meta.lastModified);
  if (lastModified) headers.set("Last-Modified", lastModified);
  return new Response(JSON.stringify(body), { status: 200, headers });
}

function baseHeaders(obj: ObjectRow, expires?: Date): Headers {
  const meta = obj.metadata ?? {};
  const headers = new Headers({ "Accept-Ranges": "bytes" });
  const mime = typeof meta.mimetype === "string" ? meta.mimetype : "application/octet-stream";
  headers.set("Content-Type", mime.includes("text/html") ? "text/plain" : mime);
  if (typeof meta.eTag === "string") headers.set("ETag", meta.eTag);
  const lastModified = httpDate(meta.lastModified);
  if (lastModified) headers.set("Last-Modified", lastModified);
  if (expires) headers.set("Expires", expires.toUTCString());
  else headers.set("Cache-Control", typeof meta.cacheControl === "string" ? meta.cacheControl : "no-cache");
  return headers;
}

function disposition(download: string): string {
  if (download === "") return "attachment;";
  const encoded = encodeURIComponent(download);
  return `attachment; filename=${encoded}; filename*=UTF-8''${encoded};`;
}

function httpDate(value: unknown): string | undefined {
  if (typeof value !== "string" && !(value instanceof Date)) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toUTCString();
}
