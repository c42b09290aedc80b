/**
 * Fault injection for object reads of the Storage stand-in (local only; hosted Storage has nothing like it).
 * The gateway exposes it as `/_local/storage/faults` (service key): POST a plan, GET the counters, DELETE to
 * stop. The fault suites use it to show that the pipeline's range reads survive what a real Storage (and the
 * CDN in front of it) does on a bad day, without losing, duplicating or mixing up a row.
 *
 * A plan (POST body, JSON):
 *   kind        "status": answer an error instead of the bytes, in hosted Storage's shape (errors.ts): `error`
 *               names which one;
 *               "truncate": send the headers (full Content-Length) and only part of the body, then end the
 *               response, so the client sees the body end early;
 *               "hang": send the headers and part of the body, then send nothing more until the client gives
 *               up (closes the connection) or `hang_ms` passes, then end the response short;
 *               "stale": a CDN cache in front of reads by name (https://supabase.com/docs/guides/storage/cdn/
 *               smart-cdn: after an update, invalidation "can take up to 60 seconds"). A download (GET or HEAD)
 *               of an object is answered from the copy cached by an earlier download of the same name while
 *               that copy is younger than `ttl_ms`: the previous version's bytes AND headers (ETag, size,
 *               Content-Range total), even after the object was overwritten. A miss caches what it serves.
 *   every       a read faults when it is the every-th, 2·every-th, … matching read (default 2): deterministic
 *               counting, no randomness, so a test can predict how many faults a number of reads meets.
 *               ("stale" ignores it: every read goes through the cache.)
 *   limit       most faults served under this plan (default unlimited), so a suite can bound the time a
 *               "hang" costs.
 *   bucket      only reads of this bucket (default any); prefix: only object names starting with it.
 *   error       for "status", hosted's error (codes.ts; HTTP status / body statusCode):
 *                 "InternalError"      500 / "500" (default)
 *                 "LockTimeout"        400 / "503"
 *                 "DatabaseReadOnly"   400 / "503"
 *                 "SlowDown"           400 / "503" (an S3 SlowDown rendered by StorageBackendError.fromError)
 *                 "DatabaseTimeout"    544 / "544"
 *                 "TooManyConnections" 429 / "429"
 *   status      for "status", the older spelling: 500 → "InternalError", 503 → "LockTimeout".
 *   bytes       for "truncate" and "hang": body bytes sent before the cut or the stall (default: half of the
 *               response body, at least 1 byte; never the whole body).
 *   hang_ms     for "hang": the longest stall (default 120000), after which the response ends short.
 *   ttl_ms      for "stale": how long a cached copy is served (default 60000, the Smart CDN's bound).
 *
 * Invariants:
 * - Only object downloads (GET of the bytes, any route: authenticated, public, generic, signed) are counted
 *   and faulted; info, list and writes never are ("stale" also answers HEAD from its copy, as a cache would).
 *   Reads with an empty body are counted but not cut.
 * - A faulted read never delivers a wrong byte of the version it names: it delivers a correct prefix of the
 *   requested range, or nothing, or ("stale") a whole earlier version with that version's own ETag. The fault
 *   is in the delivery, never in the data.
 * - Counters (`reads`, `faults` by kind, `hangs_abandoned`: hangs the client gave up on; for "stale",
 *   `faults.stale` counts reads answered with another version than the current one) are kept per plan; POST
 *   replaces the plan and resets them (and empties the cache), DELETE clears the plan and returns the final
 *   counters.
 */
import { ERRORS, type StorageError } from "./errors.ts";
import type { FileStore } from "./files.ts";
import type { ObjectRow } from "./queries.ts";

export type FaultKind = "status" | "truncate" | "hang" | "stale";
export type FaultError = keyof typeof STATUS_ERRORS;

export interface FaultPlan {
  kind: FaultKind;
  every: number;
  limit: number | null;
  bucket: string | null;
  prefix: string;
  error: FaultError;
  bytes: number | null;
  hangMs: number;
  ttlMs: number;
}

export interface FaultCounters {
  plan: FaultPlan | null;
  reads: number;
  faults: { status: number; truncate: number; hang: number; stale: number };
  hangs_abandoned: number;
}

/** Hosted Storage's errors a "status" fault answers with (errors.ts renders the shape and picks the status). */
const STATUS_ERRORS: Record<string, () => StorageError> = {
  InternalError: () => ERRORS.internal(),
  LockTimeout: () => ERRORS.lockTimeout(),
  DatabaseReadOnly: () => ERRORS.databaseReadOnly(),
  SlowDown: () => ERRORS.s3SlowDown(),
  DatabaseTimeout: () => ERRORS.databaseTimeout(),
  TooManyConnections: () => ERRORS.tooManyConnections(),
};

/** The directory name (a "bucket" of FileStore) where the stale fault keeps its cached copies. */
const CDN_BUCKET = ".cdn-cache";

/** Validates a POSTed plan; throws an Error naming the bad field. */
export function parseFaultPlan(body: unknown): FaultPlan {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new Error("the plan must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  const int = (key: string, min: number): number | null => {
    if (b[key] === undefined || b[key] === null) return null;
    const v = b[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new Error(`"${key}" must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (b.kind !== "status" && b.kind !== "truncate" && b.kind !== "hang" && b.kind !== "stale") {
    throw new Error(`"kind" must be "status", "truncate", "hang" or "stale", got ${JSON.stringify(b.kind)}`);
  }
  const status = int("status", 100);
  if (status !== null && status !== 500 && status !== 503) {
    throw new Error(`"status" must be 500 or 503, got ${status}`);
  }
  const error = b.error ?? (status === 503 ? "LockTimeout" : "InternalError");
  if (typeof error !== "string" || !(error in STATUS_ERRORS)) {
    throw new Error(
      `"error" must be one of ${Object.keys(STATUS_ERRORS).join(", ")}, got ${JSON.stringify(error)}`,
    );
  }
  for (const key of ["bucket", "prefix"]) {
    if (b[key] !== undefined && b[key] !== null && typeof b[key] !== "string") {
      throw new Error(`"${key}" must be a string`);
    }
  }
  return {
    kind: b.kind,
    every: int("every", 1) ?? 2,
    limit: int("limit", 1),
    bucket: (b.bucket as string | undefined) ?? null,
    prefix: (b.prefix as string | undefined) ?? "",
    error,
    bytes: int("bytes", 1),
    hangMs: int("hang_ms", 1) ?? 120_000,
    ttlMs: int("ttl_ms", 1) ?? 60_000,
  };
}

/** What a read by name is answered from: the current row, or a cached copy of an earlier version. */
export interface Served {
  row: ObjectRow;
  /** Where its bytes are (FileStore bucket and version). */
  bytes: { bucketId: string; version: string };
}

interface CachedCopy extends Served {
  expires: number;
}

export class StorageFaults {
  #plan: FaultPlan | null = null;
  #reads = 0;
  #faults = { status: 0, truncate: 0, hang: 0, stale: 0 };
  #abandoned = 0;
  #cache = new Map<string, CachedCopy>();

  constructor(readonly files?: FileStore) {}

  set(plan: FaultPlan): FaultCounters {
    this.#plan = plan;
    this.#reads = 0;
    this.#faults = { status: 0, truncate: 0, hang: 0, stale: 0 };
    this.#abandoned = 0;
    this.#emptyCache();
    return this.counters();
  }

  clear(): FaultCounters {
    const last = this.counters();
    this.#plan = null;
    this.#emptyCache();
    return last;
  }

  /**
   * The "stale" fault: what a download (GET or HEAD) of `row` by name is answered from. Without a stale plan
   * (or outside its bucket/prefix), the row itself. Otherwise the copy an earlier download cached, while it is
   * younger than `ttl_ms`, whatever the object holds now; on a miss the current version is cached (its bytes
   * linked, so an overwrite's removal of the old file does not take them away).
   */
  async served(row: ObjectRow): Promise<Served> {
    const plan = this.#plan;
    const current: Served = { row, bytes: { bucketId: row.bucket_id, version: row.version ?? "" } };
    if (!plan || plan.kind !== "stale" || !this.files || !this.#matches(plan, row.bucket_id, row.name)) {
      return current;
    }
    this.#reads++;
    const key = `${row.bucket_id}/${row.name}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expires > Date.now()) {
      if (cached.row.version !== row.version) this.#faults.stale++;
      return cached;
    }
    if (cached) await this.files.remove(CDN_BUCKET, cached.bytes.version);
    this.#cache.delete(key);
    if (!row.version) return current;
    const copy = { bucketId: CDN_BUCKET, version: crypto.randomUUID() };
    await this.files.link({ bucketId: row.bucket_id, version: row.version }, copy);
    this.#cache.set(key, { row, bytes: copy, expires: Date.now() + plan.ttlMs });
    return current;
  }

  #matches(plan: FaultPlan, bucket: string, name: string): boolean {
    return (plan.bucket === null || plan.bucket === bucket) && name.startsWith(plan.prefix);
  }

  #emptyCache(): void {
    for (const copy of this.#cache.values()) {
      this.files?.remove(CDN_BUCKET, copy.bytes.version).catch(() => {});
    }
    this.#cache.clear();
  }

  counters(): FaultCounters {
    return {
      plan: this.#plan,
      reads: this.#reads,
      faults: { ...this.#faults },
      hangs_abandoned: this.#abandoned,
    };
  }

  /**
   * Decides whether this read faults. A "status" fault throws the error to render (before any byte is read);
   * the others return a function that turns the real response into the faulted one.
   */
  onRead(bucket: string, name: string): ((response: Response) => Response) | null {
    const plan = this.#plan;
    if (!plan || plan.kind === "stale" || !this.#matches(plan, bucket, name)) return null;
    this.#reads++;
    const served = this.#faults.status + this.#faults.truncate + this.#faults.hang;
    if (this.#reads % plan.every !== 0 || (plan.limit !== null && served >= plan.limit)) return null;
    if (plan.kind === "status") {
      this.#faults.status++;
      throw STATUS_ERRORS[plan.error]();
    }
    return (response) => this.#cut(plan, response);
  }

  /** Sends the first `bytes` of the body, then ends it ("truncate") or stalls first ("hang"). */
  #cut(plan: FaultPlan, response: Response): Response {
    const length = Number(response.headers.get("content-length") ?? 0);
    if (!response.body || length < 2) return response;
    const keep = Math.min(plan.bytes ?? Math.max(1, Math.floor(length / 2)), length - 1);
    this.#faults[plan.kind === "hang" ? "hang" : "truncate"]++;
    const source = response.body.getReader();
    let sent = 0;
    let abandoned = false;
    const stall: { timer?: number; resolve?: () => void } = {};
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (sent >= keep) {
          if (plan.kind === "hang") {
            await new Promise<void>((resolve) => {
              stall.resolve = resolve;
              stall.timer = setTimeout(resolve, plan.hangMs);
            });
            if (abandoned) return; // cancel() ran: the stream is gone
          } else {
            // Let the server flush the headers and the prefix first: ending a body short makes it drop the
            // connection, and with nothing flushed yet the client would see no response at all.
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          await source.cancel().catch(() => {});
          controller.close(); // fewer bytes than Content-Length: the client sees the body end early
          return;
        }
        const { done, value } = await source.read();
        if (done) {
          controller.close();
          return;
        }
        const piece = value.subarray(0, keep - sent);
        sent += piece.byteLength;
        controller.enqueue(piece);
      },
      cancel: async () => {
        if (stall.resolve) {
          abandoned = true;
          this.#abandoned++;
          clearTimeout(stall.timer);
          stall.resolve();
        }
        await source.cancel().catch(() => {});
      },
    }, { highWaterMark: 0 });
    return new Response(body, { status: response.status, headers: response.headers });
  }
}
