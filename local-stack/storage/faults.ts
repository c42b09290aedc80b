/**
 * Fault injection for object reads of the Storage stand-in (local only; hosted Storage has nothing like it).
 * The gateway exposes it as `/_local/storage/faults` (service key): POST a plan, GET the counters, DELETE to
 * stop. The fault suites use it to show that the pipeline's range reads survive what a real Storage does on a
 * bad day, without losing or duplicating a row.
 *
 * A plan (POST body, JSON):
 *   kind        "status": answer `status` (500 or 503) with hosted Storage's error body, no bytes;
 *               "truncate": send the headers (full Content-Length) and only part of the body, then end the
 *               response, so the client sees the body end early;
 *               "hang": send the headers and part of the body, then send nothing more until the client gives
 *               up (closes the connection) or `hang_ms` passes, then end the response short.
 *   every       a read faults when it is the every-th, 2·every-th, … matching read (default 2): deterministic
 *               counting, no randomness, so a test can predict how many faults a number of reads meets.
 *   limit       most faults served under this plan (default unlimited), so a suite can bound the time a
 *               "hang" costs.
 *   bucket      only reads of this bucket (default any); prefix: only object names starting with it.
 *   status      for "status": 500 (default) or 503.
 *   bytes       for "truncate" and "hang": body bytes sent before the cut or the stall (default: half of the
 *               response body, at least 1 byte; never the whole body).
 *   hang_ms     for "hang": the longest stall (default 120000), after which the response ends short.
 *
 * Invariants:
 * - Only object downloads (GET of the bytes, any route: authenticated, public, generic, signed) are counted
 *   and faulted; HEAD, info, list and writes never are. Reads with an empty body are counted but not cut.
 * - A faulted read never delivers a wrong byte: it delivers a correct prefix of the requested range, or
 *   nothing. The fault is in the delivery, never in the data.
 * - Counters (`reads`, `faults` by kind, `hangs_abandoned`: hangs the client gave up on) are kept per plan;
 *   POST replaces the plan and resets them, DELETE clears the plan and returns the final counters.
 */
import { StorageError } from "./errors.ts";

export type FaultKind = "status" | "truncate" | "hang";

export interface FaultPlan {
  kind: FaultKind;
  every: number;
  limit: number | null;
  bucket: string | null;
  prefix: string;
  status: 500 | 503;
  bytes: number | null;
  hangMs: number;
}

export interface FaultCounters {
  plan: FaultPlan | null;
  reads: number;
  faults: { status: number; truncate: number; hang: number };
  hangs_abandoned: number;
}

/** Hosted Storage's error bodies for the two statuses (errors.ts renders the shape). */
const STATUS_ERRORS = {
  500: () => new StorageError(500, "InternalError", "Internal server error"),
  503: () =>
    new StorageError(503, "SlowDown", "Slow down: the service is temporarily unavailable", "SlowDown", 503),
};

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
  if (b.kind !== "status" && b.kind !== "truncate" && b.kind !== "hang") {
    throw new Error(`"kind" must be "status", "truncate" or "hang", got ${JSON.stringify(b.kind)}`);
  }
  const status = int("status", 100) ?? 500;
  if (status !== 500 && status !== 503) throw new Error(`"status" must be 500 or 503, got ${status}`);
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
    status,
    bytes: int("bytes", 1),
    hangMs: int("hang_ms", 1) ?? 120_000,
  };
}

export class StorageFaults {
  #plan: FaultPlan | null = null;
  #reads = 0;
  #faults = { status: 0, truncate: 0, hang: 0 };
  #abandoned = 0;

  set(plan: FaultPlan): FaultCounters {
    this.#plan = plan;
    this.#reads = 0;
    this.#faults = { status: 0, truncate: 0, hang: 0 };
    this.#abandoned = 0;
    return this.counters();
  }

  clear(): FaultCounters {
    const last = this.counters();
    this.#plan = null;
    return last;
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
    if (!plan || (plan.bucket !== null && plan.bucket !== bucket) || !name.startsWith(plan.prefix)) {
      return null;
    }
    this.#reads++;
    const served = this.#faults.status + this.#faults.truncate + this.#faults.hang;
    if (this.#reads % plan.every !== 0 || (plan.limit !== null && served >= plan.limit)) return null;
    if (plan.kind === "status") {
      this.#faults.status++;
      throw STATUS_ERRORS[plan.status]();
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
