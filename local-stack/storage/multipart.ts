/**
 * A streaming multipart/form-data reader for uploads: collects the text fields that precede the first file
 * part, then hands out that file part's content as a stream (what hosted's `request.file()` does).
 * Needed because supabase-js names its file part "" (`FormData.append('', blob)`), which Deno's
 * `Request.formData()` silently drops, and so a large file is never buffered.
 *
 * Invariants:
 * - Memory is bounded: field values are capped (`maxFieldBytes`), headers at 16 KiB, and file content is
 *   forwarded as it arrives, holding back at most one delimiter's length.
 * - Parts after the first file part are not read (hosted accepts one file per upload).
 * - A body that ends before the closing delimiter makes the file stream error (no silent truncation).
 */
import { ERRORS } from "./errors.ts";

export interface MultipartUpload {
  fields: Record<string, string>;
  file: { contentType: string; body: ReadableStream<Uint8Array> } | null;
}

const CRLF = new Uint8Array([13, 10]);
const HEADER_END = new Uint8Array([13, 10, 13, 10]);
const MAX_HEADER_BYTES = 16 * 1024;
const decoder = new TextDecoder();

export function boundaryOf(contentType: string): string | null {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : null;
}

export async function readMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  maxFieldBytes: number,
): Promise<MultipartUpload> {
  const input = new ByteInput(body.getReader());
  const dashBoundary = new TextEncoder().encode(`--${boundary}`);
  const delimiter = new Uint8Array([...CRLF, ...dashBoundary]);
  const malformed = () => ERRORS.invalidRequest("Malformed multipart body");
  await input.takeUntil(dashBoundary, MAX_HEADER_BYTES, malformed);
  const fields: Record<string, string> = {};
  while (await input.startsNextPart()) {
    const headers = parseHeaders(
      decoder.decode(await input.takeUntil(HEADER_END, MAX_HEADER_BYTES, malformed)),
    );
    const disposition = headers.get("content-disposition") ?? "";
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1] ?? "";
    if (/;\s*filename\*?=/i.test(disposition)) {
      const contentType = headers.get("content-type") || "application/octet-stream";
      return { fields, file: { contentType, body: input.streamUntil(delimiter) } };
    }
    const value = await input.takeUntil(
      delimiter,
      maxFieldBytes,
      () => ERRORS.entityTooLarge("user_metadata"),
    );
    fields[name] = decoder.decode(value);
  }
  await input.cancel();
  return { fields, file: null };
}

function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** A pull-based byte buffer over a body reader with delimiter search. */
class ByteInput {
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const { value, done } = await this.reader.read();
    if (done) {
      this.#eof = true;
      return false;
    }
    if (this.#buf.byteLength === 0) {
      this.#buf = value;
      return true;
    }
    const merged = new Uint8Array(this.#buf.byteLength + value.byteLength);
    merged.set(this.#buf);
    merged.set(value, this.#buf.byteLength);
    this.#buf = merged;
    return true;
  }

  /** After a delimiter: `--` ends the body, CRLF starts another part. */
  async startsNextPart(): Promise<boolean> {
    while (this.#buf.byteLength < 2) if (!await this.#fill()) throw ERRORS.noContentProvided();
    const more = this.#buf[0] === 13 && this.#buf[1] === 10;
    this.#buf = this.#buf.subarray(2);
    return more;
  }

  /** Returns the bytes before `needle` and consumes both; errors past `max` bytes or at end of body. */
  async takeUntil(needle: Uint8Array, max: number, tooLarge: () => Error): Promise<Uint8Array> {
    for (let from = 0;;) {
      const at = indexOf(this.#buf, needle, from);
      if (at >= 0) {
        const head = this.#buf.slice(0, at);
        this.#buf = this.#buf.subarray(at + needle.byteLength);
        return head;
      }
      if (this.#buf.byteLength > max) throw tooLarge();
      from = Math.max(0, this.#buf.byteLength - needle.byteLength + 1);
      if (!await this.#fill()) throw ERRORS.noContentProvided();
    }
  }

  /** Streams the bytes before `needle`, keeping only a possible partial match buffered. */
  streamUntil(needle: Uint8Array): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          const at = indexOf(this.#buf, needle, 0);
          if (at >= 0) {
            if (at > 0) controller.enqueue(this.#buf.subarray(0, at));
            this.#buf = new Uint8Array(0);
            controller.close();
            await this.cancel();
            return;
          }
          const safe = this.#buf.byteLength - needle.byteLength + 1;
          if (safe > 0) {
            controller.enqueue(this.#buf.subarray(0, safe));
            this.#buf = this.#buf.subarray(safe);
            return;
          }
          if (!await this.#fill()) {
            controller.error(ERRORS.invalidRequest("Unexpected end of multipart body"));
            return;
          }
        }
      },
      cancel: () => this.cancel(),
    });
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = haystack.byteLength - needle.byteLength;
  for (let i = haystack.indexOf(first, from); i >= 0 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.byteLength && haystack[i + j] === needle[j]) j++;
    if (j === needle.byteLength) return i;
  }
  return -1;
}
