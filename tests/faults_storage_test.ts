/**
 * Storage faults, on the real stack: the Storage stand-in's fault injection (/_local/storage/faults,
 * local-stack/storage/faults.ts) makes a share of object reads fail while a multi-chunk import runs:
 * - answers one of hosted's errors instead of the bytes, in hosted's shape (local-stack/storage/errors.ts):
 *   InternalError (HTTP 500), LockTimeout / DatabaseReadOnly / S3 SlowDown (HTTP 400, 503 in the body),
 *   DatabaseTimeout (HTTP 544), too many connections (HTTP 429);
 * - responses cut short (full Content-Length, part of the body, then the connection ends);
 * - a read that hangs mid-body past the pipeline's Storage stall timeout (30 s, storage.ts).
 * After each: the job succeeded, the table equals `psql \copy` of the file (no primary key, so a row written
 * twice would show), every chunk succeeded and the counts add up, and the fault counters prove the faults
 * were served (and, for hangs, that the reader gave up on them and resumed).
 * First, the same faults against the pipeline's StorageClient alone: every byte exactly once, in order.
 */
import assert from "node:assert/strict";
import { StorageClient } from "../supabase/functions/_shared/platform/storage.ts";
import { SECRET_KEY } from "../local-stack/keys.ts";
import {
  BUCKET,
  clearStorageFaults,
  connect,
  E2E,
  Scope,
  setStorageFaults,
  storageFaultCounters,
  type StorageFaultPlan,
  SUPABASE_URL,
  upload,
  waitForJob,
} from "./support/stack.ts";
import { assertExactJob, prepareFile } from "./support/faults.ts";

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

Deno.test(
  { name: "storage faults: the range reader delivers every byte once under each fault", ...E2E },
  async () => {
    const sql = connect(1);
    const scope = new Scope(sql, "reader");
    try {
      // A hidden name (".…") is not an import candidate: this object registers no job.
      const name = scope.object(".probe.bin");
      const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7919) % 251);
      await upload(name, bytes);
      const cases: [StorageFaultPlan, keyof Awaited<ReturnType<typeof storageFaultCounters>>["faults"]][] = [
        [{ kind: "status", error: "InternalError", every: 2, limit: 3 }, "status"],
        [{ kind: "status", error: "LockTimeout", every: 2, limit: 3 }, "status"],
        [{ kind: "status", error: "DatabaseReadOnly", every: 2, limit: 3 }, "status"],
        [{ kind: "status", error: "SlowDown", every: 2, limit: 3 }, "status"],
        [{ kind: "status", error: "DatabaseTimeout", every: 2, limit: 3 }, "status"],
        [{ kind: "status", error: "TooManyConnections", every: 2, limit: 3 }, "status"],
        [{ kind: "truncate", every: 2, limit: 3 }, "truncate"],
        [{ kind: "hang", every: 2, limit: 2 }, "hang"],
      ];
      for (const [plan, kind] of cases) {
        await setStorageFaults({ ...plan, prefix: `${scope.prefix}/` });
        const retries: number[] = [];
        const client = new StorageClient({
          supabaseUrl: SUPABASE_URL,
          key: SECRET_KEY,
          stallTimeoutMs: 1000, // the pipeline's default is 30 s; the e2e hang test below uses that one
          onRetry: (r) => retries.push(r.offset),
        });
        // Six ranges in a row: with every-2nd counting, ranges 2, 3 and 4 each meet one fault.
        const ranges = Array.from({ length: 6 }, (_, i) => [i * 512 * 1024, (i + 1) * 512 * 1024]);
        for (const [start, end] of ranges) {
          const got = await client.readBytes(BUCKET, name, start, end);
          assert.equal(got.byteLength, end - start, `${plan.kind}: bytes ${start}-${end}`);
          assert.ok(
            sameBytes(got, bytes.subarray(start, end)),
            `${plan.kind}: bytes ${start}-${end} are exact`,
          );
        }
        const counters = await clearStorageFaults();
        assert.equal(counters.faults[kind], plan.limit, `${JSON.stringify(plan)}: faults served`);
        assert.equal(retries.length, plan.limit, `${JSON.stringify(plan)}: one resumed request per fault`);
        if (kind === "hang") {
          assert.equal(
            counters.hangs_abandoned,
            plan.limit,
            "the reader gave up on every hang",
          );
        }
        if (kind === "truncate" || kind === "hang") {
          assert.ok(
            retries.every((offset) => offset % (512 * 1024) !== 0),
            `each resumed read started mid-range, after the bytes already delivered: ${retries}`,
          );
        }
      }
    } finally {
      await clearStorageFaults().catch(() => {});
      await scope.dispose();
      await sql.end();
    }
  },
);

/** One multi-chunk import under a Storage fault plan; returns the fault counters. */
async function importUnderFaults(label: string, plan: StorageFaultPlan) {
  const sql = connect();
  const scope = new Scope(sql, label);
  try {
    // 20,000 rows (~2.6 MB) in 256 KiB chunks: ~10 load chunks (each scans its range inline), ~29 range reads.
    const p = await prepareFile(sql, scope, { rows: 20_000, seed: 7, label });
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: p.target,
      chunkSizeBytes: 256 * 1024,
    });
    const name = scope.object("rows.csv");
    await setStorageFaults({ ...plan, prefix: `${scope.prefix}/` });
    const started = performance.now();
    await upload(name, { path: p.file });
    const job = await waitForJob(sql, name, 150_000);
    const counters = await clearStorageFaults();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `  ${label}: ${counters.reads} reads, faults ${JSON.stringify(counters.faults)}, ` +
        `${counters.hangs_abandoned} hangs abandoned; job ${job.status} in ${seconds} s`,
    );
    const chunks = await assertExactJob(sql, job, p);
    return { counters, chunks };
  } finally {
    await clearStorageFaults().catch(() => {});
    await scope.dispose();
    await sql.end();
  }
}

Deno.test({ name: "storage faults: 500 on every 3rd read", ...E2E }, async () => {
  const { counters } = await importUnderFaults("s500", { kind: "status", status: 500, every: 3, limit: 8 });
  assert.equal(counters.faults.status, 8, "every planned fault was served");
});

Deno.test(
  { name: "storage faults: HTTP 400 with 503 in the body (LockTimeout) on every 3rd read", ...E2E },
  async () => {
    const { counters } = await importUnderFaults("s503", {
      kind: "status",
      error: "LockTimeout",
      every: 3,
      limit: 8,
    });
    assert.equal(counters.faults.status, 8, "every planned fault was served");
  },
);

Deno.test({ name: "storage faults: responses cut short on every 2nd read", ...E2E }, async () => {
  const { counters } = await importUnderFaults("cut", { kind: "truncate", every: 2, limit: 8 });
  assert.equal(counters.faults.truncate, 8, "every planned fault was served");
});

Deno.test({ name: "storage faults: reads hang past the stall timeout", ...E2E }, async () => {
  // Two hangs (they overlap: chunks read in parallel), each stalls until the reader's 30 s timeout fires.
  const { counters } = await importUnderFaults("hang", { kind: "hang", every: 5, limit: 2 });
  assert.equal(counters.faults.hang, 2, "both hangs were served");
  assert.equal(
    counters.hangs_abandoned,
    2,
    "the pipeline gave up on both and read on from where they stopped",
  );
});
