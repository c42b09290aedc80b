/**
 * chunk (deployed as csv-import-chunk): scans or loads one claimed chunk. Called by dispatch with {"chunk_id": N, "lease_token": "uuid"}.
 * Answers 202 at once and does the work in the background (EdgeRuntime.waitUntil), so a dispatcher never waits
 * for a chunk; when done, it dispatches the next ready chunks itself, so the pipeline keeps going without
 * pg_cron, and keeps the first of them for itself while its isolate has budget left (WORKER_INVOCATION_BUDGET_BYTES
 * is one account per isolate, which concurrent requests share; pipeline/chunk_worker.ts runInvocation). A load that
 * scanned its range inline dispatches at once too (the next load became ready). When the runtime announces it is
 * stopping the isolate (beforeunload), the open batch rolls back at its next piece, the chunk is handed back at
 * once without spending an attempt (csv_import.yield_chunk) and csv-import-dispatch is kicked, so a fresh worker
 * resumes it from its last committed batch within seconds.
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false).
 */
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";
import { runInvocation } from "../_shared/pipeline/chunk_worker.ts";
import { db } from "../_shared/platform/db.ts";
import { runInBackground, shutdownSignal } from "../_shared/platform/edge_runtime.ts";
import { BadRequest, requireId, serveService } from "../_shared/platform/handler.ts";
import { versionedStorage } from "../_shared/platform/storage_versions.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const signal = shutdownSignal();

serveService(FUNCTION_NAMES.chunk, (body, cfg) => {
  const chunkId = requireId(body, "chunk_id");
  const leaseToken = body.lease_token;
  if (typeof leaseToken !== "string" || !UUID.test(leaseToken)) {
    throw new BadRequest('"lease_token" must be a UUID');
  }
  const sql = db(cfg.dbUrl, FUNCTION_NAMES.chunk);
  const deps = {
    sql,
    config: cfg,
    // A read that meets a stale CDN copy of the job's version waits it out (storage.ts).
    storage: versionedStorage(cfg, sql),
    signal,
  };
  runInBackground(runInvocation(deps, { chunk_id: chunkId, lease_token: leaseToken }));
  return Promise.resolve(Response.json({ accepted: true, chunk_id: chunkId }, { status: 202 }));
});
