/**
 * Local stand-in for pg_net's background worker (supabase/pg_net 0.20.x; see
 * ../shared/reference/supabase-platform.md §2.3). It performs the HTTP requests queued by net.http_get /
 * net.http_post / net.http_delete (local-stack/sql/pg_net.sql) and records each outcome in
 * net._http_response.
 *
 * Invariants (each the same as pg_net's):
 * - Only committed queue rows are visible to the worker, so a request is sent only after the enqueuing
 *   transaction commits and never when it rolls back.
 * - One batch is one transaction: expired responses are pruned, up to `batchSize` requests are taken from the
 *   queue (DELETE … RETURNING, in id order), all are started at once, the batch waits for every one of them to
 *   finish or time out, the responses are inserted, and only then does the transaction commit. If the worker
 *   dies mid-batch the queue rows come back, so delivery is at-least-once, as with pg_net.
 * - After a batch the worker pauses `batchPauseMs` (pg_net: 1 s) before taking the next one; it is woken by
 *   NOTIFY net_wake, which net.wake() sends and Postgres delivers at commit. Rows inserted straight into the
 *   queue without net.wake() wait for the next wake-up, as in pg_net — or at most `idlePollMs` (default 1 s):
 *   the LISTEN connection does not always survive a database restart (postgres.js 3.4.9 gave up re-listening
 *   after the server refused its reconnects, and requests then stayed queued forever;
 *   tests/faults_recovery_test.ts), while pg_net's worker restarts with the database and drains its queue.
 * - A timeout is recorded as `timed_out = true` with curl's message "Timeout was reached"; a connection
 *   failure as `error_msg` with a null status code.
 */
import postgres from "postgres";

export interface PgNetWorkerOptions {
  dbUrl: string;
  /** pg_net.batch_size: requests taken per batch (default 200, as pg_net). */
  batchSize?: number;
  /** Pause after each non-empty batch (pg_net sleeps 1 s). */
  batchPauseMs?: number;
  /** pg_net.ttl: how long responses are kept (default '6 hours'). */
  ttl?: string;
  /** Longest wait for a wake-up before looking at the queue anyway (default 1000 ms). */
  idlePollMs?: number;
  log?: (event: Record<string, unknown>) => void;
}

export interface PgNetWorker {
  close(): Promise<void>;
}

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string> | null;
  body: Uint8Array<ArrayBuffer> | null;
  timeout_milliseconds: number;
}

interface RecordedResponse {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean;
  error_msg: string | null;
}

export async function startPgNetWorker(options: PgNetWorkerOptions): Promise<PgNetWorker> {
  const batchSize = options.batchSize ?? 200;
  const batchPauseMs = options.batchPauseMs ?? 1000;
  const ttl = options.ttl ?? "6 hours";
  const idlePollMs = options.idlePollMs ?? 1000;
  const log = options.log ?? (() => {});
  const sql = postgres(options.dbUrl, {
    max: 2,
    prepare: false,
    onnotice: () => {},
    connection: { application_name: "pg_net worker" },
  });

  let closed = false;
  let wakeRequested = true; // drain whatever was queued while the worker was down
  let wakeUp: () => void = () => {};

  const wake = () => {
    wakeRequested = true;
    wakeUp();
  };
  await sql.listen("net_wake", wake);

  async function runBatch(): Promise<number> {
    return await sql.begin(async (tx) => {
      await tx`
        delete from net._http_response
        where ctid in (select ctid from net._http_response where created < now() - ${ttl}::interval limit ${batchSize})`;
      const requests = await tx<QueuedRequest[]>`
        delete from net.http_request_queue
        where id in (select id from net.http_request_queue order by id limit ${batchSize} for update skip locked)
        returning id, method, url, headers, body, timeout_milliseconds`;
      if (requests.length === 0) return 0;
      const responses = await Promise.all(requests.map(perform));
      await tx`insert into net._http_response ${
        tx(responses, "id", "status_code", "content_type", "headers", "content", "timed_out", "error_msg")
      }`;
      for (const r of responses) {
        log({ event: "pg_net.response", id: r.id, status: r.status_code, error: r.error_msg ?? undefined });
      }
      return requests.length;
    });
  }

  const loop = (async () => {
    while (!closed) {
      if (!wakeRequested) {
        let timer: number | undefined;
        await new Promise<void>((resolve) => {
          wakeUp = resolve;
          timer = setTimeout(() => {
            wakeRequested = true;
            resolve();
          }, idlePollMs);
        });
        clearTimeout(timer);
        continue;
      }
      wakeRequested = false;
      try {
        const taken = await runBatch();
        if (taken > 0) {
          wakeRequested = true; // more may remain: look again after the pause
          await new Promise((resolve) => setTimeout(resolve, batchPauseMs));
        }
      } catch (error) {
        if (closed) break;
        log({ event: "pg_net.batch_failed", error: String(error) });
        wakeRequested = true;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  })();

  return {
    async close() {
      closed = true;
      wakeUp();
      await loop;
      await sql.end({ timeout: 5 });
    },
  };
}

async function perform(request: QueuedRequest): Promise<RecordedResponse> {
  const base = { id: request.id, status_code: null, content_type: null, headers: null, content: null };
  const timeout = AbortSignal.timeout(request.timeout_milliseconds);
  try {
    const response = await fetch(request.url, {
      method: request.method.toUpperCase(),
      headers: request.headers ?? {},
      body: request.body ?? undefined,
      signal: timeout,
    });
    const content = await response.text();
    return {
      id: request.id,
      status_code: response.status,
      content_type: response.headers.get("content-type"),
      headers: Object.fromEntries(response.headers),
      content,
      timed_out: false,
      error_msg: null,
    };
  } catch (error) {
    if (timeout.aborted) return { ...base, timed_out: true, error_msg: "Timeout was reached" };
    return { ...base, timed_out: false, error_msg: `Couldn't connect to server: ${describe(error)}` };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
