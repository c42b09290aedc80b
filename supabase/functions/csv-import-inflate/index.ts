/**
 * inflate (deployed as csv-import-inflate): runs one step of a compressed job's inflate chain (issue 16;
 * pipeline/inflate_step.ts). Called by dispatch with {"chunk_id": N, "lease_token": "uuid"} for chunks of kind
 * 'inflate', as csv-import-chunk is for loads and scans, and works the same way (answers 202, works in the
 * background, hands its chunk back at beforeunload) but takes on no further chunk: every range it commits is
 * dispatched to csv-import-chunk.
 * Why a function of its own: the runtime gives concurrent requests of one function one isolate, whose thread and
 * CPU limit they share; in csv-import-chunk the chain, which every later load of its job waits for, was time-sliced
 * with up to three loads (measured on the 1M-row file gzipped: the chain spanned 6.0–8.7 s of a 8.9–9.9 s job for
 * 1.7 s of its own CPU).
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

serveService(FUNCTION_NAMES.inflate, (body, cfg) => {
  const chunkId = requireId(body, "chunk_id");
  const leaseToken = body.lease_token;
  if (typeof leaseToken !== "string" || !UUID.test(leaseToken)) {
    throw new BadRequest('"lease_token" must be a UUID');
  }
  const sql = db(cfg.dbUrl, FUNCTION_NAMES.inflate);
  const deps = { sql, config: cfg, storage: versionedStorage(cfg, sql), signal };
  runInBackground(runInvocation(deps, { chunk_id: chunkId, lease_token: leaseToken }, { takeMore: false }));
  return Promise.resolve(Response.json({ accepted: true, chunk_id: chunkId }, { status: 202 }));
});
