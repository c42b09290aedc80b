/**
 * Getting a file into the bucket: the object name a profile's pattern gives a file, and the two ways to upload
 * it — a standard supabase-js upload streamed from disk, or Storage's resumable (TUS) protocol in 6 MB pieces,
 * which Supabase recommends above 6 MB on a hosted project.
 *
 * Invariants:
 * - Nothing is buffered whole except a hosted standard upload of at most RESUMABLE_THRESHOLD bytes (hosted
 *   Storage wants its Content-Length).
 * - A failed upload throws a CliError naming bucket and object; `onProgress` gets the bytes sent so far.
 */
import { createClient } from "@supabase/supabase-js";
import { createReadStream } from "node:fs";
import * as tus from "tus-js-client";
import { keyHeaders } from "../supabase/functions/_shared/platform/auth.ts";
import { CliError } from "./common.ts";

/**
 * An object name for `file` that the profile's LIKE pattern matches: the pattern with its first `%` replaced by the
 * file's base name (and any suffix after it kept unless the name already ends with it), other `%` dropped, `_`
 * kept (it matches itself) and escapes resolved: "orders/%" → "orders/2024-05.csv", "%.csv" → "2024-05.csv".
 * A pattern without `%` names one object: null unless it is the file's name (the caller then asks for --path).
 */
export function objectNameFor(pathPattern: string, baseName: string): string | null {
  const unescape = (text: string) => text.replace(/(?<!\\)%/g, "").replace(/\\([%_\\])/g, "$1");
  const wildcard = pathPattern.search(/(?<!\\)%/);
  if (wildcard < 0) return unescape(pathPattern) === baseName ? baseName : null;
  const prefix = unescape(pathPattern.slice(0, wildcard));
  const suffix = unescape(pathPattern.slice(wildcard + 1));
  return `${prefix}${baseName}${baseName.endsWith(suffix) ? "" : suffix}`;
}

/** The file name of a path (either separator). */
export function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/** Above this size, uploads use resumable (TUS) uploads, as Supabase recommends. */
export const RESUMABLE_THRESHOLD = 6 * 1024 * 1024;

export interface UploadOptions {
  supabaseUrl: string;
  key: string;
  bucket: string;
  objectName: string;
  path: string;
  size: number;
  upsert: boolean;
  /** The object's user metadata (storage.objects.user_metadata), e.g. a dry run's {"csv_import": {"dry_run": true}}. */
  userMetadata?: Record<string, unknown>;
  onProgress?: (bytesSent: number) => void;
}

/**
 * Standard upload with supabase-js, the file streamed from disk (nothing buffered). With `withLength` (hosted, at
 * most RESUMABLE_THRESHOLD bytes) the file is read into memory first and sent with its Content-Length, which
 * hosted Storage's standard upload expects.
 */
export async function uploadStandard(o: UploadOptions & { withLength?: boolean }): Promise<void> {
  const supabase = createClient(o.supabaseUrl, o.key, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  if (o.withLength) {
    const bytes = await Deno.readFile(o.path);
    const { error } = await supabase.storage.from(o.bucket).upload(o.objectName, bytes, {
      contentType: "text/csv",
      upsert: o.upsert,
      metadata: o.userMetadata,
    });
    if (error) throw new CliError(`Upload of ${o.bucket}/${o.objectName} failed: ${error.message}`);
    o.onProgress?.(bytes.byteLength);
    return;
  }
  const file = await Deno.open(o.path);
  let sent = 0;
  const counted = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(piece, controller) {
        sent += piece.byteLength;
        o.onProgress?.(sent);
        controller.enqueue(piece);
      },
    }),
  );
  const { error } = await supabase.storage.from(o.bucket).upload(o.objectName, counted as unknown as Blob, {
    contentType: "text/csv",
    upsert: o.upsert,
    metadata: o.userMetadata,
    duplex: "half",
  } as Record<string, unknown>);
  if (error) throw new CliError(`Upload of ${o.bucket}/${o.objectName} failed: ${error.message}`);
}

/**
 * Resumable upload (TUS, Storage's /storage/v1/upload/resumable) with tus-js-client, reading the file as a stream
 * in `chunkSize` pieces (Supabase requires 6 MB) and retrying a failed piece with backoff.
 */
export function uploadResumable(
  o: UploadOptions & { chunkSize?: number; endpoint?: string },
): Promise<void> {
  const endpoint = o.endpoint ?? `${o.supabaseUrl}/storage/v1/upload/resumable`;
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(o.path), {
      endpoint,
      retryDelays: [0, 3000, 5000, 10000, 20000],
      // An sb_ key as apikey only (hosted's gateway refuses it as Bearer), a legacy JWT as both.
      headers: { ...keyHeaders(o.key), "x-upsert": o.upsert ? "true" : "false" },
      uploadDataDuringCreation: true,
      removeFingerprintOnSuccess: true,
      metadata: {
        bucketName: o.bucket,
        objectName: o.objectName,
        contentType: "text/csv",
        cacheControl: "3600",
        // Storage's TUS endpoint takes the object's user metadata as JSON in the `metadata` field.
        ...(o.userMetadata ? { metadata: JSON.stringify(o.userMetadata) } : {}),
      },
      chunkSize: o.chunkSize ?? RESUMABLE_THRESHOLD,
      uploadSize: o.size,
      onProgress: (sent) => o.onProgress?.(sent),
      onError: (error) =>
        reject(new CliError(`Resumable upload of ${o.bucket}/${o.objectName} failed: ${error.message}`)),
      onSuccess: () => resolve(),
    });
    upload.start();
  });
}

/**
 * Whether to upload resumably: forced by --resumable/--no-resumable, else above 6 MB, against a hosted project and
 * the local stack alike (the local Storage serves the same TUS endpoint, local-stack/storage/tus.ts).
 */
export function useResumable(size: number, forced: boolean | undefined): boolean {
  return forced ?? size > RESUMABLE_THRESHOLD;
}
