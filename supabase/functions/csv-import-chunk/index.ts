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
import { serveChunkInvocations } from "../_shared/pipeline/chunk_endpoint.ts";
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";

serveChunkInvocations(FUNCTION_NAMES.chunk);
