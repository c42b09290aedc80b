/**
 * The replies of the SQL functions a chunk invocation calls, spelled once. Each union lists exactly the values
 * its function returns (supabase/migrations); the code that reads a reply compares it with these names only.
 *
 * Invariants:
 * - A reply other than the one that lets the work go on ('ok', 'yielded') means the invocation no longer owns
 *   the chunk or its job stopped: the worker writes nothing more and ends (StopChunk in chunk_context.ts).
 * - The values are the same words the database stores or returns as text; nothing is translated on the way.
 */

/** csv_import.chunks.kind. */
export type ChunkKind = "scan" | "load" | "inflate";

/** The labels of the enum csv_import.chunk_status, in order (tests/sql_replies_test.ts compares). */
export const CHUNK_STATUSES = ["pending", "running", "succeeded", "dead", "cancelled"] as const;

/** csv_import.chunks.status, and 'missing' when csv_import.release_stopped_chunk finds no such chunk. */
export type ChunkStatus = typeof CHUNK_STATUSES[number] | "missing";

/**
 * csv_import.begin_batch: 'ok' (the batch may be written), or why not: the lease moved on ('lease_lost'), the
 * batch is already committed ('duplicate'), the job stopped ('stopped'), the object no longer holds the job's
 * version ('superseded'), or no such chunk ('missing').
 */
export type BatchState = typeof BATCH_STATES[number];

/** The labels of the enum csv_import.batch_state, in order (tests/sql_replies_test.ts compares). */
export const BATCH_STATES = ["ok", "lease_lost", "duplicate", "stopped", "missing", "superseded"] as const;

/** Why a chunk invocation ends without writing: any BatchState but 'ok'. */
export type StopReason = Exclude<BatchState, "ok">;

/** csv_import.commit_batch's `refused`: the job stopped, or its object version is gone. */
export type BatchRefusal = "stopped" | "superseded";

/** csv_import.commit_batch's reply (jsonb). */
export interface BatchCommitReply {
  job_status?: string;
  job_finished?: boolean;
  rejects_stored?: number;
  refused?: BatchRefusal;
}

/** csv_import.complete_scan and csv_import.complete_inline_scan. */
export type ScanReply = "ok" | "lease_lost";

/** csv_import.commit_inflate_step's answer: only 'ok' committed the step. */
export type InflateStepReply = "ok" | "lease_lost" | "stopped" | "duplicate";

/** csv_import.renew_lease: renewed, busy (a batch holds the row: its commit renews the lease), or lost. */
export type LeaseRenewal = "ok" | "busy" | "lost";

/** csv_import.yield_chunk: handed back to the queue, or the lease was gone. */
export type YieldReply = "yielded" | "lease_lost";

/** csv_import.fail_chunk: what SQL decided for a failed chunk. */
export type FailDecision = "retry" | "dead" | "job_failed" | "lease_lost";
