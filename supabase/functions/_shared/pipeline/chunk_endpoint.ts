/**
 * The request side of the functions that process claimed chunks (csv-import-chunk: loads and scans;
 * csv-import-inflate: compressed jobs' inflate chains): dispatch POSTs {"chunk_id": N, "lease_token": "uuid"},
 * the function answers 202 at once and runs the invocation in the background (runInvocation).
 *
 * Invariants:
 * - A request without a positive integer chunk_id and a UUID lease_token is refused (400) before anything runs;
 *   {"warm": true} is answered 204 and does nothing else (it only boots the isolate: register's warm-up).
 * - Only the caller's lease is ever used: a chunk whose lease moved on is left alone (chunk_context is null).
 * - Auth as every service function (platform/handler.ts serveService: service role key, secret key or the
 *   pipeline's internal secret).
 */
import { db } from "../platform/db.ts";
import { runInBackground, shutdownSignal } from "../platform/edge_runtime.ts";
import { BadRequest, requireId, serveService } from "../platform/handler.ts";
import { versionedStorage } from "../platform/storage_versions.ts";
import { runInvocation } from "./chunk_worker.ts";
import type { PipelineFunction } from "./function_names.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Serves `name` as a chunk function; `takeMore: false`: it processes only the chunks it is sent. */
export function serveChunkInvocations(name: PipelineFunction, opts: { takeMore?: boolean } = {}): void {
  const signal = shutdownSignal();
  serveService(name, (body, cfg) => {
    // A warm-up (csv-import-register, about to plan a file that will need this function): booting the isolate was
    // the point; nothing else runs.
    if (body.warm === true) return Promise.resolve(new Response(null, { status: 204 }));
    const chunkId = requireId(body, "chunk_id");
    const leaseToken = body.lease_token;
    if (typeof leaseToken !== "string" || !UUID.test(leaseToken)) {
      throw new BadRequest('"lease_token" must be a UUID');
    }
    const sql = db(cfg.dbUrl, name);
    // A read that meets a stale CDN copy of the job's version waits it out (storage.ts).
    const deps = { sql, config: cfg, storage: versionedStorage(cfg, sql), signal };
    runInBackground(runInvocation(deps, { chunk_id: chunkId, lease_token: leaseToken }, opts));
    return Promise.resolve(Response.json({ accepted: true, chunk_id: chunkId }, { status: 202 }));
  });
}
