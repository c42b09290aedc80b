/**
 * A chunk whose worker died or froze inside a batch is taken over quickly, and nothing is written twice (issue 10).
 *
 * - killed (SIGKILL of the worker process while its batch waits at a gate): the database aborts the batch when
 *   the connection drops; the lease (LEASE_SECONDS, 20 s, renewed by the worker's heartbeat) expires and the
 *   10-second reclaim (pg_cron job csv-import-leases) requeues the chunk at once: taken over within ~30 s.
 * - frozen (SIGSTOP): the connection stays open and the batch holds its chunk row; the batch's
 *   idle_in_transaction_session_timeout (BATCH_IDLE_TIMEOUT_SECONDS, 45 s) ends the session, then the lease is
 *   reclaimed: taken over within about a minute. The frozen worker is then resumed (SIGCONT): it finds its lease
 *   gone and writes nothing.
 * Both end with the table equal to `psql \copy` of the file. The worker process is found from the database
 * backend blocked at the gate: its client port, then the local process owning that socket (/proc).
 */
import assert from "node:assert/strict";
import {
  connect,
  describeJob,
  E2E,
  jobByObject,
  Scope,
  type Sql,
  upload,
  waitForJob,
} from "./support/stack.ts";
import { assertExactJob, blockAtRow, prepareFile, waitForNewLease } from "./support/faults.ts";

/** The process id of the local process whose TCP socket has local port `port` (from /proc/net/tcp{,6}). */
async function processOfLocalPort(port: number): Promise<number> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of (await Deno.readTextFile(table)).split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && parseInt(cols[1].split(":")[1], 16) === port) inodes.add(cols[9]);
    }
  }
  for await (const proc of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(proc.name)) continue;
    try {
      for await (const fd of Deno.readDir(`/proc/${proc.name}/fd`)) {
        const link = await Deno.readLink(`/proc/${proc.name}/fd/${fd.name}`).catch(() => "");
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode && inodes.has(inode)) return Number(proc.name);
      }
    } catch {
      // the process ended meanwhile, or its fds are not readable
    }
  }
  throw new Error(`no local process owns TCP port ${port}`);
}

/** The worker process whose database backend is `backendPid`. */
async function workerOfBackend(sql: Sql, backendPid: number): Promise<number> {
  const [{ port }] = await sql<{ port: number }[]>`
    select client_port as port from pg_stat_activity where pid = ${backendPid}`;
  return await processOfLocalPort(port);
}

/** A 40,000-row file in ~4,000-row chunks, one at a time, whose chunk 4 waits at a gate. */
async function gatedImport(sql: Sql, scope: Scope) {
  const p = await prepareFile(sql, scope, { rows: 40_000, seed: 51, label: "liveness" });
  await scope.profile({
    pathPattern: `${scope.prefix}/%`,
    targetTable: p.target,
    chunkSizeBytes: 512 * 1024,
    maxParallelChunks: 1,
  });
  const name = scope.object("orders.csv");
  const gate = await blockAtRow(sql, scope, p.target, 20_000);
  await upload(name, { path: p.file });
  const backend = await gate.blocked("the import to block at the gate", () => describeJob(sql, name));
  const [chunk] = await sql<{ id: string; lease_token: string }[]>`
    select c.id::text, c.lease_token::text from csv_import.chunks c
    where c.job_id = ${(await jobByObject(sql, name))!.id} and c.kind = 'load' and c.status = 'running'
    limit 1`;
  return { p, name, gate, backend, chunk };
}

/** Waits until the chunk runs under another lease (taken over); returns the seconds it took from `since`. */
function takenOver(sql: Sql, chunk: { id: string; lease_token: string }, since: number, name: string) {
  return waitForNewLease(sql, chunk, { since, objectName: name, timeoutMs: 120_000, intervalMs: 250 });
}

Deno.test({ name: "liveness: a killed worker's chunk is taken over within ~30 s", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "killed");
  try {
    const { p, name, gate, backend, chunk } = await gatedImport(sql, scope);
    const worker = await workerOfBackend(sql, backend);
    Deno.kill(worker, "SIGKILL");
    const killedAt = performance.now();
    await gate.release();
    const seconds = await takenOver(sql, chunk, killedAt, name);
    console.log(`killed worker: chunk taken over after ${seconds.toFixed(1)} s`);
    assert.ok(seconds <= 35, `taken over after ${seconds.toFixed(1)} s (lease 20 s + reclaim every 10 s)`);
    const job = await waitForJob(sql, name, 120_000);
    await assertExactJob(sql, job, p);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test(
  { name: "liveness: a frozen worker's chunk is taken over within about a minute", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "frozen");
    let frozen: number | null = null;
    try {
      const { p, name, gate, backend, chunk } = await gatedImport(sql, scope);
      frozen = await workerOfBackend(sql, backend);
      Deno.kill(frozen, "SIGSTOP");
      const frozenAt = performance.now();
      await gate.release(); // the batch's statement completes; the session then sits idle in its transaction
      const seconds = await takenOver(sql, chunk, frozenAt, name);
      console.log(`frozen worker: chunk taken over after ${seconds.toFixed(1)} s`);
      assert.ok(seconds <= 75, `taken over after ${seconds.toFixed(1)} s (idle timeout 45 s + reclaim)`);
      Deno.kill(frozen, "SIGCONT"); // it finds its session ended and its lease gone, and writes nothing
      frozen = null;
      const job = await waitForJob(sql, name, 120_000);
      await assertExactJob(sql, job, p);
    } finally {
      if (frozen !== null) Deno.kill(frozen, "SIGCONT");
      await scope.dispose();
      await sql.end();
    }
  },
);
