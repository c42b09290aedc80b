/**
 * Storage over its HTTP API with plain fetch: byte-range reads (supabase-js has no Range option), object info
 * and uploads (the rejects CSV).
 *
 * Invariants:
 * - Byte ranges are half-open [start, end) everywhere in the pipeline; this file is the only place that turns
 *   them into HTTP's inclusive `Range: bytes=start-(end-1)`.
 * - `readRange` yields exactly the requested bytes, in order, or throws: a response cut short, a reset
 *   connection, a 5xx/429 or a stalled read is resumed from the next undelivered byte (new Range request) with
 *   exponential backoff, up to `attempts` requests; a 206 whose Content-Range does not start where asked is an
 *   error, never silently accepted.
 * - It is pull-based: the next piece is fetched only when the consumer asks for it (backpressure), so memory
 *   stays bounded by one network read, whatever the file size.
 */
import { backoffMs, TransientError } from "./retry.ts";

export interface StorageClientOptions {
  supabaseUrl: string;
  key: string;
  /** Requests per range read, first included (default 6). */
  attempts?: number;
  /** Abort a request that delivers nothing for this long (default 30 s). */
  stallTimeoutMs?: number;
  fetch?: typeof fetch;
  onRetry?: (info: { attempt: number; offset: number; error: string; delayMs: number }) => void;
}

export class StorageError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = "StorageError";
  }
}

export function objectPath(bucket: string, name: string): string {
  return `${encodeURIComponent(bucket)}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class StorageClient {
  readonly #url: string;
  readonly #key: string;
  readonly #attempts: number;
  readonly #stallMs: number;
  readonly #fetch: typeof fetch;
  readonly #onRetry: StorageClientOptions["onRetry"];

  constructor(options: StorageClientOptions) {
    this.#url = `${options.supabaseUrl.replace(/\/+$/, "")}/storage/v1`;
    this.#key = options.key;
    this.#attempts = options.attempts ?? 6;
    this.#stallMs = options.stallTimeoutMs ?? 30_000;
    this.#fetch = options.fetch ?? fetch;
    this.#onRetry = options.onRetry;
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.#key}`, apikey: this.#key, ...extra };
  }

  /**
   * Streams bytes [start, end) of an object (end omitted = to the end of the object). Resumes transparently
   * after transient failures; throws StorageError for 4xx answers (missing object, no permission).
   */
  readRange(bucket: string, name: string, start: number, end?: number): ReadableStream<Uint8Array> {
    const url = `${this.#url}/object/authenticated/${objectPath(bucket, name)}`;
    let offset = start;
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    let attempt = 0;
    let controller: AbortController | null = null;

    const open = async () => {
      for (;;) {
        attempt++;
        controller = new AbortController();
        const rangeEnd = end === undefined ? "" : String(end - 1);
        try {
          const response = await this.#withStall(
            this.#fetch(url, {
              headers: this.#headers({ Range: `bytes=${offset}-${rangeEnd}` }),
              signal: controller.signal,
            }),
            controller,
          );
          if (response.status === 416) {
            await response.body?.cancel();
            reader = null;
            return; // nothing at or after offset: the range is empty
          }
          if (!response.ok) {
            const body = await response.text().catch(() => "");
            const message =
              `Storage answered ${response.status} for ${bucket}/${name} bytes ${offset}-${rangeEnd}: ${
                body.slice(0, 200)
              }`;
            if (isTransientStatus(response.status)) throw new TransientError(message);
            throw new StorageError(message, response.status);
          }
          const contentRange = response.headers.get("content-range");
          const deliveredFrom = response.status === 206
            ? Number(/bytes (\d+)-/.exec(contentRange ?? "")?.[1])
            : 0;
          if (deliveredFrom !== offset) {
            await response.body?.cancel();
            throw new StorageError(
              `Storage returned bytes from ${deliveredFrom} when asked for ${offset} (${
                contentRange ?? "no Content-Range"
              })`,
              502,
            );
          }
          reader = response.body!.getReader();
          return;
        } catch (error) {
          if (error instanceof StorageError || attempt >= this.#attempts) throw error;
          await this.#pause(error, offset, attempt);
        }
      }
    };

    return new ReadableStream<Uint8Array>({
      pull: async (stream) => {
        for (;;) {
          if (end !== undefined && offset >= end) {
            stream.close();
            return;
          }
          if (!reader) {
            await open();
            if (!reader) {
              stream.close();
              return;
            }
          }
          try {
            const { done, value } = await this.#withStall(reader.read(), controller!);
            if (done) {
              reader = null;
              if (end === undefined) {
                stream.close(); // open-ended read: the object ended
                return;
              }
              throw new TransientError(`Storage response ended at byte ${offset}, before ${end}`);
            }
            const piece = end === undefined ? value : value.subarray(0, Math.max(0, end - offset));
            offset += piece.byteLength;
            if (piece.byteLength > 0) {
              stream.enqueue(piece);
              return;
            }
          } catch (error) {
            reader?.cancel().catch(() => {});
            reader = null;
            if (error instanceof StorageError || attempt >= this.#attempts) throw error;
            await this.#pause(error, offset, attempt);
          }
        }
      },
      cancel: async () => {
        await reader?.cancel().catch(() => {});
        controller?.abort();
      },
    }, { highWaterMark: 0 });
  }

  /** Reads [start, end) fully into memory (for small ranges: the file's head). */
  async readBytes(bucket: string, name: string, start: number, end: number): Promise<Uint8Array> {
    const out = new Uint8Array(Math.max(0, end - start));
    let at = 0;
    for await (const piece of this.readRange(bucket, name, start, end)) {
      out.set(piece, at);
      at += piece.byteLength;
    }
    return out.subarray(0, at);
  }

  /** Uploads (or overwrites) an object from a string or stream. */
  async upload(bucket: string, name: string, body: BodyInit, contentType: string): Promise<void> {
    const response = await this.#fetch(`${this.#url}/object/${objectPath(bucket, name)}`, {
      method: "POST",
      headers: this.#headers({ "Content-Type": contentType, "x-upsert": "true" }),
      body,
    });
    if (!response.ok) {
      const text = await response.text().catch(() => "");
      const message = `Upload of ${bucket}/${name} failed with ${response.status}: ${text.slice(0, 200)}`;
      throw isTransientStatus(response.status)
        ? new TransientError(message)
        : new StorageError(message, response.status);
    }
    await response.body?.cancel();
  }

  async #withStall<T>(promise: Promise<T>, controller: AbortController): Promise<T> {
    let timer: number | undefined;
    const stall = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new TransientError(`Storage read stalled for ${this.#stallMs} ms`));
      }, this.#stallMs);
    });
    try {
      return await Promise.race([promise, stall]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #pause(error: unknown, offset: number, attempt: number): Promise<void> {
    const delayMs = backoffMs(attempt, 200, 5000);
    this.#onRetry?.({ attempt, offset, error: String(error), delayMs });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}
