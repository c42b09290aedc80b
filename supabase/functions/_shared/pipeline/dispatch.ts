/**
 * Dispatch: claims ready chunks (csv_import.claim_chunks decides which, within the global fan-out width and each
 * job's limit, by priority and fairly) and invokes the chunk function once per claimed chunk. Also writes due
 * rejects files.
 *
 * Invariants:
 * - Every claimed chunk is either handed to a chunk invocation that accepted it (202), or failed back to SQL
 *   at once (csv_import.fail_chunk, transient) so it is retried with backoff; a hand-off that is lost anyway is
 *   repaired by lease expiry: every dispatch first reclaims expired leases (csv_import.reclaim_and_claim_chunks),
 *   and pg_cron does every 10 s.
 * - Dispatch is kicked on registration and by every finishing chunk (the pipeline's speed never waits for
 *   pg_cron); reconcile's kick through pg_net is only the safety net.
 * - With `background` (the csv-import-dispatch function), dispatch answers once its claims are made: the
 *   hand-offs (up to 30 s each) and the rejects files run after the answer (EdgeRuntime.waitUntil), so a pg_net
 *   batch, which waits for every request in it (supabase/pg_net:src/worker.c), never waits behind them.
 */
import { keyHeaders } from "../platform/auth.ts";
import type { Config } from "../platform/config.ts";
import type { Sql } from "../platform/db.ts";
import { log, redact } from "../platform/log.ts";
import { FUNCTION_NAMES } from "./function_names.ts";
import { writePendingRejectFiles } from "./rejects_file.ts";
import type { StorageClient } from "../platform/storage.ts";

export interface ClaimedChunk {
  chunk_id: number;
  job_id: number;
  kind: "scan" | "load" | "inflate";
  chunk_index: number;
  lease_token: string;
}

export interface DispatchDeps {
  sql: Sql;
  config: Config;
  storage: StorageClient;
  fetch?: typeof fetch;
}

/** POSTs a JSON body to another pipeline function with the service key; resolves to the response status. */
export async function invokeFunction(
  deps: Pick<DispatchDeps, "config" | "fetch">,
  name: string,
  body: unknown,
): Promise<number> {
  const doFetch = deps.fetch ?? fetch;
  const response = await doFetch(`${deps.config.supabaseUrl}/functions/v1/${name}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...keyHeaders(deps.config.serviceKey), // an sb_ key as apikey only (hosted refuses it as Bearer)
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  await response.body?.cancel();
  return response.status;
}

/**
 * Claims and fans out ready chunks; returns how many were claimed. With `keep`, the first claimed chunk (the
 * one claim_chunks ranks first) is not handed off but returned as `kept`: the caller, a chunk invocation with
 * budget left, processes it itself instead of paying for a new invocation; `keep: { jobId }` keeps a claimed
 * chunk of that job only (register, which loads a small file's one chunk itself). With `background`, the
 * hand-offs and the rejects files are passed to it instead of awaited (`rejectFiles` is then null: not known yet).
 */
export async function dispatch(
  deps: DispatchDeps,
  reason: string,
  opts: { keep?: boolean | { jobId: number }; background?: (work: Promise<unknown>) => void } = {},
): Promise<{ claimed: number; rejectFiles: number | null; kept: ClaimedChunk | null }> {
  const { sql, config } = deps;
  // The global limit: fixed, or steered by the database's measured rate (FAN_OUT_AUTO_MAX; csv_import.fan_out_width).
  const claimed = await sql<ClaimedChunk[]>`
    select chunk_id, job_id, kind::text as kind, chunk_index, lease_token::text as lease_token
    from (select csv_import.fan_out_width(${config.fanOutWidth}, ${config.fanOutAutoMax}) as width) as fan_out
    cross join lateral csv_import.reclaim_and_claim_chunks(fan_out.width, fan_out.width,
                                                           make_interval(secs => ${config.leaseSeconds}))`;
  const keep = opts.keep;
  const kept =
    (typeof keep === "object" ? claimed.find((c) => c.job_id === keep.jobId) : keep ? claimed[0] : null) ??
      null;
  const rest = handOffAndWriteRejects(deps, reason, claimed, kept);
  if (opts.background) {
    opts.background(rest);
    return { claimed: claimed.length, rejectFiles: null, kept };
  }
  return { claimed: claimed.length, rejectFiles: await rest, kept };
}

/** Hands every claimed chunk but `kept` to a chunk invocation, then writes due rejects files; how many. */
async function handOffAndWriteRejects(
  deps: DispatchDeps,
  reason: string,
  claimed: ClaimedChunk[],
  kept: ClaimedChunk | null,
): Promise<number> {
  const { sql } = deps;
  await Promise.all(
    claimed.filter((chunk) => chunk !== kept).map(async (chunk) => {
      let outcome: string;
      try {
        // A compressed job's chain runs in a function of its own (csv-import-inflate/index.ts says why).
        const target = chunk.kind === "inflate" ? FUNCTION_NAMES.inflate : FUNCTION_NAMES.chunk;
        const status = await invokeFunction(deps, target, {
          chunk_id: chunk.chunk_id,
          lease_token: chunk.lease_token,
        });
        if (status === 202 || status === 200) return;
        outcome = `the chunk function answered ${status}`;
      } catch (error) {
        outcome = `the chunk function could not be reached: ${
          error instanceof Error ? error.message : error
        }`;
      }
      log("warn", "chunk_handoff_failed", {
        job: chunk.job_id,
        chunk: chunk.chunk_index,
        kind: chunk.kind,
        outcome,
      });
      await sql`select csv_import.fail_chunk(p_chunk_id => ${chunk.chunk_id},
        p_lease_token => ${chunk.lease_token}::uuid, p_error => ${redact("Hand-off failed: " + outcome)})`;
    }),
  );
  // Never lose the claims over a rejects file: a failure here is logged and the next dispatch tries again.
  const rejectFiles = await writePendingRejectFiles(sql, deps.storage).catch((error) => {
    log("warn", "rejects_files_failed", { error });
    return 0;
  });
  if (claimed.length > 0 || rejectFiles > 0) {
    log("info", "dispatched", {
      reason,
      claimed: claimed.length,
      kept: kept !== null,
      reject_files: rejectFiles,
    });
  }
  return rejectFiles;
}
