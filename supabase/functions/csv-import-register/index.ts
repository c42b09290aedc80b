/**
 * register (deployed as csv-import-register): plans the import job of an uploaded object. Called through pg_net by the storage trigger (and by
 * the reconciler when a registration did not complete) with {"job_id": N}. Answers once the plan is stored,
 * then dispatches the first chunks in the background. A small file (one chunk of at most
 * REGISTER_INLINE_LOAD_BYTES) is loaded here, in the background, while this isolate's work account has room
 * (pipeline/chunk_worker.ts isolateWork) and the isolate is otherwise idle (no other registration being answered,
 * no other inline load running): its chunk is claimed for this invocation and processed as a chunk invocation
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
import { isolateWork, runInvocation } from "../_shared/pipeline/chunk_worker.ts";
import { dispatch, type DispatchDeps } from "../_shared/pipeline/dispatch.ts";
import { runInBackground, shutdownSignal } from "../_shared/platform/edge_runtime.ts";
import { requireId, serveService } from "../_shared/platform/handler.ts";
import { registerJob } from "../_shared/pipeline/register.ts";
import { StorageClient } from "../_shared/platform/storage.ts";
import { databaseEtag } from "../_shared/platform/storage_versions.ts";

const signal = shutdownSignal();
/** Registrations being answered and inline loads running in this isolate now (see the module doc). */
let registrationsOpen = 0;
let inlineLoadsOpen = 0;

/** Dispatches a registered job's first chunks; loads a small file's one chunk here (see the module doc). */
async function dispatchOrLoad(deps: DispatchDeps, result: { jobId: number; chunks: number; bytes: number }) {
  const reason = `job ${result.jobId} registered`;
  const inline = result.chunks === 1 && result.bytes <= deps.config.registerInlineLoadBytes &&
    registrationsOpen === 0 && inlineLoadsOpen === 0 && isolateWork.bytes < deps.config.invocationBudgetBytes;
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
    if (kept) await runInvocation({ ...deps, signal }, kept, { takeMore: false });
  } finally {
    inlineLoadsOpen--;
  }
}

serveService(FUNCTION_NAMES.register, async (body, cfg) => {
  const jobId = requireId(body, "job_id");
  const sql = db(cfg.dbUrl, FUNCTION_NAMES.register);
  const deps = {
    sql,
    config: cfg,
    // A stale CDN copy of the object is waited out for up to 20 s here (the answer is awaited by pg_net), then
    // the registration is retried later with backoff (storage.ts, register.ts).
    storage: new StorageClient({
      supabaseUrl: cfg.supabaseUrl,
      key: cfg.serviceKey,
      currentEtag: databaseEtag(sql),
      staleWaitMs: 20_000,
    }),
  };
  registrationsOpen++;
  let result;
  try {
    result = await registerJob(deps, jobId);
  } finally {
    registrationsOpen--;
  }
  if (result.outcome === "planned") runInBackground(dispatchOrLoad(deps, result));
  return Response.json(result, { status: result.outcome === "retry_later" ? 503 : 200 });
});
