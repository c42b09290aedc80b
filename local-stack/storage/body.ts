/**
 * Reads an upload request into a byte stream plus the file attributes hosted Storage derives from it
 * (supabase/storage `src/storage/uploader.ts` incomingFileInfo / fileUploadFromRequest):
 * - multipart/form-data (what supabase-js sends for Blob/File/FormData): fields `cacheControl` (seconds →
 *   `max-age=N`, else `no-cache`), `contentType`, `metadata`/`userMetadata` (JSON), then the first file part.
 * - any other body: raw bytes; `Content-Type` (default application/octet-stream), `Cache-Control`
 *   (default no-cache), `x-metadata` (base64 JSON).
 *
 * Invariants:
 * - Nothing is buffered except multipart fields (≤ 1 MiB each, hosted's user-metadata cap).
 * - A raw body whose Content-Length already exceeds the limit is refused before a byte is read; bodies are
 *   also counted while streaming (files.ts), so chunked bodies cannot bypass the limit.
 */
import { ERRORS } from "./errors.ts";
import { boundaryOf, readMultipart } from "./multipart.ts";

export interface UploadBody {
  body: ReadableStream<Uint8Array>;
  mimeType: string;
  cacheControl: string;
  userMetadata: Record<string, unknown> | undefined;
}

const MAX_METADATA_BYTES = 1024 * 1024;

export async function readUploadBody(req: Request, limit: number): Promise<UploadBody> {
  const contentType = req.headers.get("content-type") ?? "";
  if (!req.body) throw ERRORS.noContentProvided();
  if (contentType.toLowerCase().startsWith("multipart/form-data")) {
    const boundary = boundaryOf(contentType);
    if (!boundary) throw ERRORS.noContentProvided();
    const { fields, file } = await readMultipart(req.body, boundary, MAX_METADATA_BYTES);
    if (!file) throw ERRORS.noContentProvided();
    return {
      body: file.body,
      mimeType: fields.contentType || file.contentType,
      cacheControl: fields.cacheControl ? `max-age=${fields.cacheControl}` : "no-cache",
      userMetadata: parseJsonObject(fields.metadata ?? fields.userMetadata),
    };
  }
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw ERRORS.entityTooLarge();
  return {
    body: req.body,
    mimeType: contentType || "application/octet-stream",
    cacheControl: req.headers.get("cache-control") ?? "no-cache",
    userMetadata: metadataHeader(req),
  };
}

/** The `x-metadata` header: base64-encoded JSON user metadata (ignored when not decodable). */
export function metadataHeader(req: Request): Record<string, unknown> | undefined {
  const encoded = req.headers.get("x-metadata");
  return encoded ? parseJsonObject(decodeBase64(encoded)) : undefined;
}

/** Hosted `validateMimeType`: `type/subtype` must match an allowed `type/subtype` or `type/*`. */
export function mustBeAllowedMimeType(mimeType: string, allowed: string[] | null): void {
  if (!allowed || allowed.length === 0) return;
  const [type, subtype] = mimeType.split("/");
  if (subtype === undefined) throw ERRORS.invalidMimeType(mimeType);
  const ok = allowed.some((entry) => {
    const [allowedType, allowedSubtype] = entry.split("/");
    return allowedType === type && (allowedSubtype === "*" || allowedSubtype === subtype);
  });
  if (!ok) throw ERRORS.invalidMimeType(mimeType);
}

function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" ? value : undefined;
  } catch {
    return undefined;
  }
}

function decodeBase64(text: string): string | undefined {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}
