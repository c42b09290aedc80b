/**
 * Storage over its HTTP API with plain fetch: byte-range reads (supabase-js has no Range option), object info,
 * uploads (the rejects CSV) and signed download URLs (the client API's link to a rejects file).
 *
 * Invariants:
 * - Byte ranges are half-open [start, end) everywhere in the pipeline; this file is the only place that turns
 *   them into HTTP's inclusive `Range: bytes=start-(end-1)`.
 * - `readRange` yields exactly the requested bytes, in order, or throws: a response cut short, a reset
 *   connection, a transient error or a stalled read is resumed from the next undelivered byte (new Range
 *   request) with exponential backoff, up to `attempts` requests; a 206 whose Content-Range does not start where
 *   asked is an error, never silently accepted.
 * - Errors are classified by the code hosted Storage puts in the body, not by the HTTP status: hosted answers
 *   HTTP 400 for every error but 500 (and 544, 429), with the real code as the body's `statusCode`
 *   (supabase/storage `src/http/error-handler.ts:46-52`, `src/internal/errors/storage-error.ts:23`). 404 is
 *   "the object is gone"; 408, 429, 5xx (544 DatabaseTimeout, 503 LockTimeout/DatabaseReadOnly/SlowDown
 *   included) are transient; every other code is permanent (StorageError, its `status` the body's code). A HEAD
 *   answer has no body: a HEAD refused with 400 is asked again as an info request to learn the code.
 * - It is pull-based: the next piece is fetched only when the consumer asks for it (backpressure), so memory
 *   stays bounded by one network read, whatever the file size.
 * - Version-bound reads: given the ETag of the version a job loads, a response with another ETag (the object was
 *   overwritten, or a CDN served a stale copy) is never read. When the client can ask the database for the
 *   object's current ETag (`currentEtag`) and it is still the expected one, the response was a stale cached
 *   copy (the Smart CDN may serve one for up to 60 s after an overwrite,
 *   https://supabase.com/docs/guides/storage/cdn/smart-cdn): the read waits and asks again, without spending an
 *   attempt, for up to `staleWaitMs`. Otherwise (or once that time is spent) ObjectChangedError, which the
 *   caller resolves by asking the database whether the job's version is still the object's. An unsatisfiable
 *   range with an expected ETag is treated the same way (a shorter cached version answers so).
 * - Where the bytes land is the caller's choice ({@link ReadTarget}): a fresh array per network read (the
 *   default), or — read with a BYOB reader, no allocation per read — one scratch buffer that every piece
 *   overwrites, or the caller's own buffer, filled in order.
 */
import { keyHeaders } from "./auth.ts";
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
  /**
   * The object's current ETag as the database records it (storage.objects.metadata.eTag), or null: lets a read
   * that meets another version's ETag tell a stale cached copy (the expected version is still current) from an
   * overwrite. Without it every other ETag is ObjectChangedError at once.
   */
  currentEtag?: (bucket: string, name: string) => Promise<string | null>;
  /** How long a read waits out stale copies (default 75 s: the Smart CDN's 60 s, and some). */
  staleWaitMs?: number;
}

/** A permanent Storage refusal. `status` is the code hosted puts in the body's `statusCode` (404: gone). */
export class StorageError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    readonly httpStatus: number = status,
  ) {
    super(message);
    this.name = "StorageError";
  }
}

/** An error answer of hosted Storage: `{statusCode: "<code>", code, error, message}` (error-handler.ts). */
export interface StorageErrorAnswer {
  /** The code that classifies the error: the body's `statusCode` when it has one, else the HTTP status. */
  status: number;
  /** The body's `code` (NoSuchKey, LockTimeout, …), when it has one. */
  code: string | null;
  httpStatus: number;
}

/** Reads an error answer's classifying code from its body (hosted sends HTTP 400 with the code inside). */
export function errorAnswer(httpStatus: number, bodyText: string): StorageErrorAnswer {
  let status = httpStatus;
  let code: string | null = null;
  try {
    const body = JSON.parse(bodyText);
    if (body && typeof body === "object") {
      const inBody = Number(body.statusCode);
      if (Number.isInteger(inBody) && inBody >= 100 && inBody <= 599) status = inBody;
      if (typeof body.code === "string") code = body.code;
    }
  } catch {
    // not JSON (a proxy's page): the HTTP status is all there is
  }
  return { status, code, httpStatus };
}

/** 408, 429 and 5xx (544 DatabaseTimeout, 503 LockTimeout/DatabaseReadOnly/SlowDown) are worth retrying. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The error to throw for an error answer: TransientError, or StorageError (permanent) with the body's code. */
export function storageFailure(message: string, answer: StorageErrorAnswer): Error {
  return isTransientStatus(answer.status)
    ? new TransientError(message)
    : new StorageError(message, answer.status, answer.code, answer.httpStatus);
}

/** A response for another version of the object than the one asked for (its ETag differs). */
export class ObjectChangedError extends Error {
  constructor(readonly expected: string, readonly received: string | null) {
    super(
      `The object changed: Storage sent ETag ${received ?? "(none)"} where version ${expected} was expected`,
    );
    this.name = "ObjectChangedError";
  }
}

/** An ETag without the weak marker and quotes, for comparison (a CDN may weaken a strong ETag). */
export function normalizeEtag(etag: string | null | undefined): string | null {
  if (!etag) return null;
  return etag.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** Options of a read: `etag`, the version the bytes must belong to (checked on every response). */
export interface ReadOptions {
  etag?: string | null;
}

export function objectPath(bucket: string, name: string): string {
  return `${encodeURIComponent(bucket)}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Where `readRange` puts the bytes it reads:
 * - "fresh": each piece is an array of its own (any consumer).
 * - "reuse": each piece is a view of one scratch buffer, valid only until the next piece is asked for: for
 *   consumers that are done with a piece when they ask for the next (a parser that copies what it keeps).
 *   Why: a fresh array per network read is ~16 k allocations and 130 MB of ArrayBuffers per million reference
 *   rows, which V8 answers with full collections (external memory), on the workers' two shared cores.
 * - a Uint8Array of at least the range's length: the bytes are copied into it in order; pieces are views of it.
 */
export type ReadTarget = "fresh" | "reuse" | Uint8Array;

/** The scratch buffer of a BYOB read: big enough that a read takes what the connection holds. */
const SCRATCH_BYTES = 256 * 1024;

/** A BYOB reader of a response body, or its default reader when the body is not a byte stream. */
function byobReader(
  body: ReadableStream<Uint8Array>,
): ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader {
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return body.getReader();
  }
}

export class StorageClient {
  readonly #supabaseUrl: string;
  readonly #url: string;
  readonly #key: string;
  readonly #attempts: number;
  readonly #stallMs: number;
  readonly #fetch: typeof fetch;
  readonly #onRetry: StorageClientOptions["onRetry"];
  readonly #currentEtag: StorageClientOptions["currentEtag"];
  readonly #staleWaitMs: number;

  constructor(options: StorageClientOptions) {
    this.#supabaseUrl = options.supabaseUrl.replace(/\/+$/, "");
    this.#url = `${this.#supabaseUrl}/storage/v1`;
    this.#key = options.key;
    this.#attempts = options.attempts ?? 6;
    this.#stallMs = options.stallTimeoutMs ?? 30_000;
    this.#fetch = options.fetch ?? fetch;
    this.#onRetry = options.onRetry;
    this.#currentEtag = options.currentEtag;
    this.#staleWaitMs = options.staleWaitMs ?? 75_000;
  }

  /**
   * Whether a response of another version than `expected` was a stale cached copy: the database still records
   * `expected` as the object's ETag and the read has waited less than staleWaitMs since the first such copy.
   */
  async #isStaleCopy(bucket: string, name: string, expected: string, since: number): Promise<boolean> {
    if (!this.#currentEtag || performance.now() - since >= this.#staleWaitMs) return false;
    return normalizeEtag(await this.#currentEtag(bucket, name)) === expected;
  }

  /** Where and as whom this client talks to Storage (for storage_resumable.ts's uploads). */
  get connection(): { supabaseUrl: string; key: string; fetch: typeof fetch } {
    return { supabaseUrl: this.#supabaseUrl, key: this.#key, fetch: this.#fetch };
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...keyHeaders(this.#key), ...extra };
  }

  /**
   * Streams bytes [start, end) of an object (end omitted = to the end of the object), placed as `target` says.
   * Resumes transparently after transient failures; throws StorageError for 4xx answers (missing object, no
   * permission).
   */
  readRange(
    bucket: string,
    name: string,
    start: number,
    end?: number,
    target: ReadTarget = "fresh",
    options: ReadOptions = {},
  ): ReadableStream<Uint8Array> {
    const expectedEtag = normalizeEtag(options.etag);
    const url = `${this.#url}/object/authenticated/${objectPath(bucket, name)}`;
    if (target instanceof Uint8Array && (end === undefined || target.byteLength < end - start)) {
      throw new RangeError(`readRange: a ${target.byteLength}-byte buffer cannot hold bytes ${start}-${end}`);
    }
    let offset = start;
    let reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader | null = null;
    let attempt = 0;
    let controller: AbortController | null = null;
    // BYOB reads transfer the buffer they are given and hand it back with the bytes; a failed read keeps it.
    let scratch: ArrayBuffer | null = null;
    /** The next network read: into the scratch buffer (BYOB) when the body allows it, else a fresh array. */
    const readOnce = async (r: NonNullable<typeof reader>): Promise<ReadableStreamReadResult<Uint8Array>> => {
      if (!(r instanceof ReadableStreamBYOBReader)) return await r.read();
      const want = end === undefined ? SCRATCH_BYTES : Math.min(SCRATCH_BYTES, end - offset);
      const buffer = scratch ?? new ArrayBuffer(SCRATCH_BYTES);
      scratch = null;
      const result = await r.read(new Uint8Array(buffer, 0, want));
      if (result.value) scratch = result.value.buffer as ArrayBuffer;
      return result as ReadableStreamReadResult<Uint8Array>;
    };

    /** When the first stale cached copy was met (performance.now()), or null. */
    let staleSince: number | null = null;
    /** Waits out a stale copy (true) or says the object changed (false). */
    const waitIfStale = async (received: string | null): Promise<boolean> => {
      if (expectedEtag === null) return false;
      staleSince ??= performance.now();
      if (!(await this.#isStaleCopy(bucket, name, expectedEtag, staleSince))) return false;
      attempt--; // a stale copy spends no attempt: it goes away by itself
      await this.#pause(`a stale copy (ETag ${received ?? "none"}) of ${bucket}/${name}`, offset, 5);
      return true;
    };

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
            // With a known version, a range it holds cannot be unsatisfiable: a shorter (stale or newer) copy.
            if (expectedEtag !== null && (end === undefined || offset < end)) {
              if (await waitIfStale(null)) continue;
              throw new ObjectChangedError(expectedEtag, null);
            }
            reader = null;
            return; // nothing at or after offset: the range is empty
          }
          if (!response.ok) {
            const body = await response.text().catch(() => "");
            const message =
              `Storage answered ${response.status} for ${bucket}/${name} bytes ${offset}-${rangeEnd}: ${
                body.slice(0, 200)
              }`;
            throw storageFailure(message, errorAnswer(response.status, body));
          }
          const received = response.headers.get("etag");
          if (expectedEtag !== null && normalizeEtag(received) !== expectedEtag) {
            await response.body?.cancel();
            if (await waitIfStale(received)) continue;
            throw new ObjectChangedError(expectedEtag, received);
          }
          staleSince = null;
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
          reader = target === "fresh" ? response.body!.getReader() : byobReader(response.body!);
          return;
        } catch (error) {
          if (
            error instanceof StorageError || error instanceof ObjectChangedError || attempt >= this.#attempts
          ) {
            throw error;
          }
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
            const { done, value } = await this.#withStall(readOnce(reader), controller!);
            if (done) {
              reader = null;
              if (end === undefined) {
                stream.close(); // open-ended read: the object ended
                return;
              }
              throw new TransientError(`Storage response ended at byte ${offset}, before ${end}`);
            }
            let piece = end === undefined ? value : value.subarray(0, Math.max(0, end - offset));
            if (target instanceof Uint8Array) {
              target.set(piece, offset - start);
              piece = target.subarray(offset - start, offset - start + piece.byteLength);
            }
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
  async readBytes(
    bucket: string,
    name: string,
    start: number,
    end: number,
    options: ReadOptions = {},
  ): Promise<Uint8Array> {
    const out = new Uint8Array(Math.max(0, end - start));
    let at = 0;
    for await (const piece of this.readRange(bucket, name, start, end, "reuse", options)) {
      out.set(piece, at);
      at += piece.byteLength;
    }
    return out.subarray(0, at);
  }

  /**
   * The object's current ETag (a HEAD request); null when Storage sends none. Throws StorageError for permanent
   * refusals (404: gone), TransientError for transient ones. A HEAD answer has no body, so a refused HEAD is asked
   * again as an info request (`GET /object/info/authenticated/…`), whose body carries the code.
   */
  async objectEtag(bucket: string, name: string): Promise<string | null> {
    const path = objectPath(bucket, name);
    const response = await this.#fetch(`${this.#url}/object/authenticated/${path}`, {
      method: "HEAD",
      headers: this.#headers(),
    });
    await response.body?.cancel();
    if (response.ok) return response.headers.get("etag");
    let answer = errorAnswer(response.status, "");
    if (!isTransientStatus(response.status)) {
      const info = await this.#fetch(`${this.#url}/object/info/authenticated/${path}`, {
        headers: this.#headers(),
      });
      const text = await info.text().catch(() => "");
      if (info.ok) {
        return info.headers.get("etag") ?? (JSON.parse(text) as { etag?: string | null }).etag ?? null;
      }
      answer = errorAnswer(info.status, text);
    }
    return Promise.reject(
      storageFailure(
        `Storage answered ${response.status} (code ${answer.status}) to HEAD ${bucket}/${name}`,
        answer,
      ),
    );
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
      throw storageFailure(message, errorAnswer(response.status, text));
    }
    await response.body?.cancel();
  }

  /**
   * A download URL of an object that anyone holding it may use for `expiresIn` seconds, signed by Storage
   * (`POST /object/sign/{bucket}/{path}` `{expiresIn}` → `{signedURL: "/object/sign/…?token=…"}`, relative to
   * /storage/v1, as supabase-js createSignedUrl joins it). Throws StorageError (404: no such object) or
   * TransientError as the other requests do.
   */
  async signedUrl(bucket: string, name: string, expiresIn: number): Promise<string> {
    const response = await this.#fetch(`${this.#url}/object/sign/${objectPath(bucket, name)}`, {
      method: "POST",
      headers: this.#headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ expiresIn }),
    });
    const text = await response.text().catch(() => "");
    if (!response.ok) {
      const message = `Signing a URL of ${bucket}/${name} failed with ${response.status}: ${
        text.slice(0, 200)
      }`;
      throw storageFailure(message, errorAnswer(response.status, text));
    }
    const signed = (JSON.parse(text) as { signedURL?: unknown }).signedURL;
    if (typeof signed !== "string" || !signed.startsWith("/")) {
      throw new Error(`Storage answered no signedURL for ${bucket}/${name}`);
    }
    return `${this.#url}${signed}`;
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
    // (a stale copy passes attempt 3: ~0.8–1.6 s between looks, backoffMs' jitter included)
    const delayMs = backoffMs(attempt, 200, 5000);
    this.#onRetry?.({ attempt, offset, error: String(error), delayMs });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}
