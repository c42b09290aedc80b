/**
 * Resumable uploads to Storage (its TUS endpoint, /storage/v1/upload/resumable): an object of known size sent in
 * parts of RESUMABLE_PART_BYTES, for the files the functions write that may pass what a standard upload should
 * carry (hosted recommends standard uploads up to 6 MB and wants their Content-Length,
 * https://supabase.com/docs/guides/storage/uploads/resumable-uploads: "chunk size must be set to 6MB").
 *
 * Invariants:
 * - Memory: one part at a time (the caller's pieces are copied into a part buffer of RESUMABLE_PART_BYTES).
 * - Exactly the given bytes, in order: every PATCH names the offset it continues from; the server's answer must
 *   move the offset to the end of what was sent, or the upload fails. A PATCH that fails transiently (network,
 *   408/429/5xx, hosted's 400 with such a code in the body) is retried: a HEAD asks the server where the upload
 *   stands and only the rest of the current part is sent again (the TUS core protocol's resume).
 * - The object appears (or replaces the previous one, `x-upsert: true`) only once the last byte is accepted;
 *   a size mismatch between `size` and the pieces is an error before anything is finalized.
 *
 * Why not tus-js-client (the CLI uses it for users' uploads, cli/upload.ts): in Deno it sends through its Node
 * HTTP stack, not the runtime's `fetch` that every other Storage call of the functions uses (and that the tests
 * inject faults into), and it adds ~40 ms of module loading to a function's cold start (measured: `await
 * import("tus-js-client")` 38–65 ms in Deno 2, this machine) for two request kinds. The protocol steps used here
 * are TUS 1.0 core plus `creation` (POST with Upload-Length and Upload-Metadata); tests/storage_resumable_test.ts
 * uploads the same bytes with both clients and compares the objects.
 */
import { keyHeaders } from "./auth.ts";
import { withRetry } from "./retry.ts";
import { errorAnswer, storageFailure } from "./storage.ts";

/** Supabase's TUS part size ("must be set to 6MB"); also the size above which the functions upload resumably. */
export const RESUMABLE_PART_BYTES = 6 * 1024 * 1024;

export interface ResumableTarget {
  supabaseUrl: string;
  key: string;
  fetch?: typeof fetch;
  /** Tries per part, first included (default 5). */
  attempts?: number;
}

export interface ResumableObject {
  bucket: string;
  name: string;
  contentType: string;
  /** The object's exact size in bytes (TUS Upload-Length). */
  size: number;
}

const TUS_VERSION = { "Tus-Resumable": "1.0.0" };

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

/** Uploads `pieces` (exactly `object.size` bytes in all) as `object`, replacing an existing one. */
export async function uploadResumable(
  target: ResumableTarget,
  object: ResumableObject,
  pieces: AsyncIterable<Uint8Array>,
): Promise<void> {
  const send = target.fetch ?? fetch;
  const storageUrl = `${target.supabaseUrl.replace(/\/+$/, "")}/storage/v1`;
  // x-upsert on every request: hosted checks the caller's right to write the object on each PATCH too
  // (supabase/storage's TUS onIncomingRequest → canUpload; local-stack/storage/tus.ts does the same).
  const headers = (extra: Record<string, string>) => ({
    ...keyHeaders(target.key),
    ...TUS_VERSION,
    "x-upsert": "true",
    ...extra,
  });
  const label = `${object.bucket}/${object.name}`;
  const fail = async (what: string, response: Response): Promise<never> => {
    const text = await response.text().catch(() => "");
    throw storageFailure(
      `Resumable upload of ${label}: ${what} answered ${response.status}: ${text.slice(0, 200)}`,
      errorAnswer(response.status, text),
    );
  };

  const created = await send(`${storageUrl}/upload/resumable`, {
    method: "POST",
    headers: headers({
      "Upload-Length": String(object.size),
      "Upload-Metadata": [
        `bucketName ${base64(object.bucket)}`,
        `objectName ${base64(object.name)}`,
        `contentType ${base64(object.contentType)}`,
      ].join(","),
    }),
  });
  if (created.status !== 201) await fail("creating the upload", created);
  await created.body?.cancel();
  const location = created.headers.get("location");
  if (!location) throw new Error(`Resumable upload of ${label}: the server gave no upload URL`);
  const uploadUrl = new URL(location, `${storageUrl}/upload/resumable`).href;

  /** Where the server says the upload stands (HEAD), after a failed PATCH. */
  const serverOffset = async (): Promise<number> => {
    const response = await send(uploadUrl, { method: "HEAD", headers: headers({}) });
    await response.body?.cancel();
    if (!response.ok) await fail("HEAD", response);
    return Number(response.headers.get("upload-offset"));
  };

  /**
   * Sends `part` (which starts at `partStart`); after a transient failure (withRetry: network, 408/429/5xx) the
   * next try asks the server where the upload stands and sends only the rest of the part.
   */
  const sendPart = (part: Uint8Array<ArrayBuffer>, partStart: number): Promise<void> => {
    const partEnd = partStart + part.byteLength;
    return withRetry(async (attempt) => {
      const offset = attempt === 1 ? partStart : await serverOffset();
      if (offset < partStart || offset > partEnd) {
        throw new Error(`Resumable upload of ${label}: the server is at byte ${offset}, outside this part`);
      }
      if (offset === partEnd) return;
      const response = await send(uploadUrl, {
        method: "PATCH",
        headers: headers({
          "Upload-Offset": String(offset),
          "Content-Type": "application/offset+octet-stream",
        }),
        body: part.subarray(offset - partStart),
      });
      if (response.status !== 204) await fail(`PATCH at byte ${offset}`, response);
      await response.body?.cancel();
      const reached = Number(response.headers.get("upload-offset"));
      if (reached !== partEnd) {
        throw new Error(
          `Resumable upload of ${label}: the server is at byte ${reached} after a PATCH that ended at ${partEnd}`,
        );
      }
    }, { attempts: target.attempts ?? 5, baseMs: 200, capMs: 5000 });
  };

  const mismatch = (given: number) =>
    new Error(`Resumable upload of ${label}: ${given} bytes given for an object of ${object.size}`);
  // Every full part but the last is sent as soon as it is full; the last waits until the pieces have ended, so
  // that a size mismatch fails the upload before its last byte (which finalizes the object) is sent.
  const part = new Uint8Array(Math.min(RESUMABLE_PART_BYTES, Math.max(object.size, 1)));
  let filled = 0;
  let sent = 0;
  let given = 0;
  for await (const piece of pieces) {
    given += piece.byteLength;
    if (given > object.size) throw mismatch(given);
    for (let at = 0; at < piece.byteLength;) {
      const take = Math.min(part.byteLength - filled, piece.byteLength - at);
      part.set(piece.subarray(at, at + take), filled);
      filled += take;
      at += take;
      if (filled === part.byteLength && sent + filled < object.size) {
        await sendPart(part, sent);
        sent += filled;
        filled = 0;
      }
    }
  }
  if (given !== object.size) throw mismatch(given);
  if (filled > 0) await sendPart(part.subarray(0, filled), sent); // an empty object is complete once created
}
