/**
 * dispatch (deployed as csv-import-dispatch): claims ready chunks and fans them out to chunk invocations; writes due rejects files.
 * Called by the reconciler (pg_cron → pg_net) as a safety net, by a chunk the runtime is stopping (beforeunload:
 * its chunk was handed back and must be picked up by a fresh worker), and by hand to nudge the pipeline. The hot
 * path does not need it: registration and every finishing chunk dispatch in-process.
 * Answers as soon as the chunks are claimed: hand-offs and rejects files run in the background
 * (EdgeRuntime.waitUntil), so the caller (a pg_net batch) never waits for them.
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false).
 */
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";
import { db } from "../_shared/platform/db.ts";
import { dispatch } from "../_shared/pipeline/dispatch.ts";
import { runInBackground } from "../_shared/platform/edge_runtime.ts";
import { serveService } from "../_shared/platform/handler.ts";
import { StorageClient } from "../_shared/platform/storage.ts";

serveService(FUNCTION_NAMES.dispatch, async (body, cfg) => {
  const storage = new StorageClient({ supabaseUrl: cfg.supabaseUrl, key: cfg.serviceKey });
  const reason = typeof body.reason === "string" ? body.reason : "request";
  return Response.json(
    await dispatch({ sql: db(cfg.dbUrl, FUNCTION_NAMES.dispatch), config: cfg, storage }, reason, {
      background: runInBackground,
    }),
  );
});
