/**
 * register (deployed as csv-import-register): plans the import job of an uploaded object. Called through pg_net by the
 * storage trigger (and by the reconciler when a registration did not complete) with {"job_id": N}. Answers once
 * the plan is stored (200, or 503 for a transient failure), then dispatches the first chunks in the background.
 * The isolate runs at most REGISTER_CONCURRENT_REGISTRATIONS registrations at once (pipeline/register_queue.ts):
 * a request that finds them busy is queued and answered 202 at once; when the runtime stops the isolate, the
 * queued ones go to a fresh isolate in one request {"job_ids": [N, …]} (queued, answered 202; 503 from an isolate
 * that is stopping too, which leaves them to reconcile). Falling idle, it takes the registrations that were requested
 * and have not reached it yet (pg_net sends in batches, sleeping between them: register_queue.ts, drain).
 * A small file (one chunk of at most REGISTER_INLINE_LOAD_BYTES) is loaded here, in the background, while this isolate's work account has room
 * (pipeline/isolate_budget.ts isolateWork) and the isolate is otherwise idle (no other registration running or
 * queued, no other inline load running): its chunk is claimed for this invocation and processed as a chunk invocation
 * would, with the same lease, beforeunload hand-back and exactly-once commit; every other chunk claimed with it
 * goes to csv-import-chunk. Only when idle because a burst of uploads sends its registrations to one isolate at
 * once (pg_net sends up to 200 per batch; per_worker routes them to the function's active isolate), whose CPU
 * they share: with loads added, 200 small files at once pushed the register isolate past its hard CPU limit
 * (148 registrations answered 546, recovered by reconcile: 85 s instead of 17 s; tests/scale_test.ts), so
 * during a burst the small files go to chunk invocations, spread over fresh workers.
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false).
 */
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";
import { db } from "../_shared/platform/db.ts";
import { runInvocation } from "../_shared/pipeline/chunk_worker.ts";
import { isolateWork } from "../_shared/pipeline/isolate_budget.ts";
import { dispatch, type DispatchDeps, invokeFunction } from "../_shared/pipeline/dispatch.ts";
import { runInBackground, shutdownSignal } from "../_shared/platform/edge_runtime.ts";
import { BadRequest, requireId, serveService } from "../_shared/platform/handler.ts";
import { registerJob, type RegisterOutcome } from "../_shared/pipeline/register.ts";
import { RegistrationQueue } from "../_shared/pipeline/register_queue.ts";
import { versionedStorage } from "../_shared/platform/storage_versions.ts";
import type { Config } from "../_shared/platform/config.ts";

const signal = shutdownSignal();
/** Inline loads running in this isolate now (see the module doc). */
let inlineLoadsOpen = 0;
/** When this isolate started: the registrations it drains are of jobs created since (registrations_waiting). */
const isolateStarted = new Date();
/**
 * When this isolate last warmed csv-import-chunk up (performance.now()). A file that chunk invocations will load
 * sends the chunk function an empty request as its planning starts, so that a cold chunk isolate boots while the
 * plan is made rather than after the plan is dispatched (two cold starts in a row otherwise: 55–100 ms each here).
 * At most once per CHUNK_WARM_EVERY_MS: while jobs keep coming, the chunk isolate is warm anyway.
 */
let chunkWarmedAt = Number.NEGATIVE_INFINITY;
const CHUNK_WARM_EVERY_MS = 10_000;
/** This isolate's registrations (pipeline/register_queue.ts), made with the first request's configuration. */
let queue: RegistrationQueue | null = null;

function queueOf(cfg: Config): RegistrationQueue {
  if (queue !== null) return queue;
  const sql = db(cfg.dbUrl, FUNCTION_NAMES.register);
  // A stale CDN copy of the object is waited out for up to 20 s (a lone registration's answer is awaited by
  // pg_net), then the registration is retried later with backoff (storage.ts, register.ts).
  const deps: DispatchDeps = { sql, config: cfg, storage: versionedStorage(cfg, sql, 20_000) };
  const registerDeps = {
    ...deps,
    planning: (job: { object_size: number | null }) => {
      if ((job.object_size ?? 0) <= cfg.registerInlineLoadBytes) return; // loaded here, or too small to matter
      if (performance.now() - chunkWarmedAt < CHUNK_WARM_EVERY_MS) return;
      chunkWarmedAt = performance.now();
      runInBackground(invokeFunction(deps, FUNCTION_NAMES.chunk, { warm: true }).catch(() => {}));
    },
  };
  return queue = new RegistrationQueue({
    concurrency: cfg.registerConcurrency,
    register: (jobId) => registerJob(registerDeps, jobId),
    onRegistered: (result) => {
      if (result.outcome === "planned") runInBackground(dispatchOrLoad(deps, result));
    },
    // A new request: the runtime gives it to an isolate that is not stopping.
    handOff: async (jobIds) => {
      const status = await invokeFunction(deps, FUNCTION_NAMES.register, { job_ids: jobIds });
      if (status !== 202) throw new Error(`the register function answered ${status}`);
    },
    background: runInBackground,
    signal,
    // Requested registrations that have not reached this isolate (pg_net sends in batches): taken when it is idle,
    // of the jobs created since it started (older ones may wait in a retired isolate's queue).
    waiting: async (after, limit) =>
      (await sql<{ id: number }[]>`
        select id from csv_import.registrations_waiting(${after}, ${isolateStarted}, ${limit}) as id`)
        .map((row) => row.id),
  });
}

/**
 * Dispatches a registered job's first chunks; loads a small file's one chunk here (see the module doc). A small
 * compressed file (inflated whole at registration, at most REGISTER_INLINE_LOAD_BYTES of data) runs its inflate
 * chain here, then its load chunk, the same way.
 */
async function dispatchOrLoad(
  deps: DispatchDeps,
  result: { jobId: number; chunks: number; bytes: number; compressed?: { dataBytes: number | null } },
) {
  const reason = `job ${result.jobId} registered`;
  const small = result.compressed
    ? result.compressed.dataBytes !== null &&
      result.compressed.dataBytes <= deps.config.registerInlineLoadBytes
    : result.chunks === 1 && result.bytes <= deps.config.registerInlineLoadBytes;
  const inline = small && queue?.idle === true && inlineLoadsOpen === 0 &&
    isolateWork.bytes < deps.config.invocationBudgetBytes;
  if (!inline) {
    await dispatch(deps, reason);
    return;
  }
  inlineLoadsOpen++;
  try {
    const { kept } = await dispatch(deps, reason, {
      keep: { jobId: result.jobId },
      background: runInBackground,
    });
    // A compressed file: its chain, then the load chunk the chain made, and nothing of other jobs.
    const takeMore = result.compressed ? { jobId: result.jobId } : false;
    if (kept) await runInvocation({ ...deps, signal }, kept, { takeMore });
  } finally {
    inlineLoadsOpen--;
  }
}

/** `job_ids` of a hand-off: a non-empty array of positive integers, at most 10,000. */
function requireIds(body: Record<string, unknown>): number[] {
  const ids = body.job_ids;
  if (
    !Array.isArray(ids) || ids.length === 0 || ids.length > 10_000 ||
    !ids.every((id) => Number.isSafeInteger(id) && id > 0)
  ) {
    throw new BadRequest(`"job_ids" must be an array of 1 to 10000 job ids`);
  }
  return ids;
}

serveService(FUNCTION_NAMES.register, async (body, cfg) => {
  const registrations = queueOf(cfg);
  if ("job_ids" in body) {
    const jobIds = requireIds(body);
    if (!registrations.acceptHandOff(jobIds)) {
      return Response.json({ outcome: "stopping", jobs: jobIds.length }, { status: 503 });
    }
    return Response.json({ outcome: "queued", jobs: jobIds.length }, { status: 202 });
  }
  const jobId = requireId(body, "job_id");
  const result: RegisterOutcome | null = await registrations.submit(jobId);
  if (result === null) return Response.json({ outcome: "queued", jobId }, { status: 202 });
  return Response.json(result, { status: result.outcome === "retry_later" ? 503 : 200 });
});
