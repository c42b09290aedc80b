/**
 * dispatch (deployed as csv-import-dispatch): claims ready chunks and fans them out to chunk invocations; writes due rejects files.
 * Called by the reconciler (pg_cron → pg_net) as a safety net, and by hand to nudge the pipeline. The hot path
 * does not need it: registration and every finishing chunk dispatch in-process.
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false).
 */
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";
import { db } from "../_shared/platform/db.ts";
import { dispatch } from "../_shared/pipeline/dispatch.ts";
import { serveService } from "../_shared/platform/handler.ts";
import { StorageClient } from "../_shared/platform/storage.ts";

serveService(FUNCTION_NAMES.dispatch, async (body, cfg) => {
  const storage = new StorageClient({ supabaseUrl: cfg.supabaseUrl, key: cfg.serviceKey });
  const reason = typeof body.reason === "string" ? body.reason : "request";
  return Response.json(
    await dispatch({ sql: db(cfg.dbUrl, FUNCTION_NAMES.dispatch), config: cfg, storage }, reason),
  );
});
