/**
 * chunk: scans or loads one claimed chunk. Called by dispatch with {"chunk_id": N, "lease_token": "uuid"}.
 * Answers 202 at once and does the work in the background (EdgeRuntime.waitUntil), so a dispatcher never waits
 * for a chunk; when done, it dispatches the next ready chunks itself, so the pipeline keeps going without
 * pg_cron, and keeps the first of them for itself while it has budget left (WORKER_INVOCATION_BUDGET_BYTES).
 * A load that scanned its range inline dispatches at once too (the next load became ready). Stops at the next
 * batch boundary when the runtime announces shutdown (beforeunload); the lease then expires and the chunk
 * resumes from its last committed batch.
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false).
 */
import { processChunk } from "../_shared/pipeline/chunk_worker.ts";
import { db } from "../_shared/platform/db.ts";
import { dispatch } from "../_shared/pipeline/dispatch.ts";
import { runInBackground, shutdownSignal } from "../_shared/platform/edge_runtime.ts";
import { BadRequest, requireId, serveService } from "../_shared/platform/handler.ts";
import { StorageClient } from "../_shared/platform/storage.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const signal = shutdownSignal();

serveService("chunk", (body, cfg) => {
  const chunkId = requireId(body, "chunk_id");
  const leaseToken = body.lease_token;
  if (typeof leaseToken !== "string" || !UUID.test(leaseToken)) {
    throw new BadRequest('"lease_token" must be a UUID');
  }
  const deps = {
    sql: db(cfg.dbUrl, "csv-import chunk"),
    config: cfg,
    storage: new StorageClient({ supabaseUrl: cfg.supabaseUrl, key: cfg.serviceKey }),
    signal,
    // A load's inline scan made the next loads ready: hand them out now, not when this chunk is done.
    onScanned: () => runInBackground(dispatch(deps, `chunk ${next?.chunk_id} scanned inline`)),
  };
  // The chunk being processed. Within its budget the invocation takes the next ready chunk itself (see
  // WORKER_INVOCATION_BUDGET_BYTES); the others claimed with it go to new invocations.
  let next: { chunk_id: number; lease_token: string } | null = { chunk_id: chunkId, lease_token: leaseToken };
  runInBackground((async () => {
    let done = 0;
    while (next !== null) {
      const { workBytes } = await processChunk(deps, next.chunk_id, next.lease_token);
      done += workBytes;
      if (signal.aborted) return;
      const keep = done < cfg.invocationBudgetBytes;
      next = (await dispatch(deps, `chunk ${next.chunk_id} finished`, { keep })).kept;
    }
  })());
  return Promise.resolve(Response.json({ accepted: true, chunk_id: chunkId }, { status: 202 }));
});
