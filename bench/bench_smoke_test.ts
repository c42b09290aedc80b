/**
 * The benchmark end to end, small (against the real local stack): `bench/main.ts` on 5,000 rows at width 2 writes
 * a report whose `psql \copy` baseline and pipeline run are both measured and valid (row count and checksum
 * checked by the bench itself), with the CPU split the table shows and the database's page faults. Why a test: the bench is a command, run by
 * hand, and a change to the stack once broke every baseline unnoticed (CHECKPOINT refused to the non-superuser
 * `postgres`). Timing is not asserted (the ratios are the bench's business, not a pass/fail). The second test runs
 * the compressed uploads' paths (`--compress gzip,multi`) on 20,000 rows: each codec's `\copy from program
 * 'gzip -dc'` baseline and its pipeline run are valid, the job recognised the upload as gzip, and the chain's
 * steps, span and per-kind CPU/memory are measured.
 */
import assert from "node:assert/strict";

async function runBench(out: string, extra: string[]) {
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      new URL("./main.ts", import.meta.url).pathname,
      "--widths",
      "2",
      "--skip-pgloader",
      "--wait-idle",
      "60",
      "--out",
      out,
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
  return { code: run.code, text };
}

Deno.test({
  name: "bench: a small run measures \\copy and the pipeline, both valid",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/report.json`;
    const { code, text } = await runBench(out, ["--rows", "5000"]);
    assert.equal(code, 0, text.slice(-3000));
    const report = JSON.parse(await Deno.readTextFile(out)) as {
      error: string | null;
      results: {
        method: string;
        valid: boolean;
        problems?: string[];
        ratioToCopy: number | null;
        pipeline?: { functionsCpuSeconds: number; rowPathSeconds: number; chunkSize: number | null };
        cpu: { functionSeconds: number | null; faults: { db: number | null; functions: number | null } };
      }[];
    };
    assert.equal(report.error, null);
    const byMethod = new Map(report.results.map((r) => [r.method, r]));
    for (const method of ["psql \\copy", "pipeline"]) {
      const r = byMethod.get(method);
      assert.ok(r, `${method} was measured: ${text.slice(-2000)}`);
      assert.ok(r.valid, `${method}: ${JSON.stringify(r.problems)}`);
      assert.ok(typeof r.ratioToCopy === "number" && r.ratioToCopy > 0);
    }
    assert.ok(byMethod.get("pipeline")!.pipeline!.functionsCpuSeconds > 0, "the functions' CPU is measured");
    assert.ok(byMethod.get("pipeline")!.pipeline!.rowPathSeconds > 0, "the loads' row path is timed");
    // The footer names the size the job was planned with (jobs.chunk_size), not only the configured one.
    const planned = byMethod.get("pipeline")!.pipeline!.chunkSize;
    assert.ok(planned !== null && planned > 0, `the job's chunk size is reported: ${planned}`);
    assert.ok(text.includes(`chunk size ${(planned! / 1048576).toFixed(2)} MiB.`), "… and printed");
    assert.ok(
      text.includes("pipeline 5000 w2: the row path (parsing, checking, encoding) "),
      text.slice(-1500),
    );
    // The best ratio the run's CPU allowed on this machine's cores, against the same size's \copy.
    assert.match(text, /pipeline 5000 w2: at best \d+\.\d\d× \\copy on \d+ cores: the run used /);
    // The bench starts the width's function workers afresh: their processes spend CPU and fault.
    const { functionSeconds, faults } = byMethod.get("pipeline")!.cpu;
    assert.ok(
      functionSeconds !== null && functionSeconds > 0,
      `the function workers' CPU (${functionSeconds})`,
    );
    assert.ok(
      faults.functions !== null && faults.functions > 0,
      `the function workers' faults (${faults.functions})`,
    );
    // Page faults per part: a run's database backends are new processes, so they fault; each run prints its line.
    for (
      const [method, label] of [["psql \\copy", "psql \\copy 5000 w-"], ["pipeline", "pipeline 5000 w2"]]
    ) {
      const faults = byMethod.get(method)!.cpu.faults.db;
      assert.ok(
        faults !== null && faults > 0,
        `${method}: the database's page faults are counted (${faults})`,
      );
      assert.ok(
        text.includes(`${label}: page faults: database `),
        `${label}'s page-fault line: ${text.slice(-1500)}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "bench: --compress gzip,multi measures each codec's gzip -dc baseline and the pipeline's chain",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/report.json`;
    const { code, text } = await runBench(out, ["--rows", "20000", "--compress", "gzip,multi"]);
    assert.equal(code, 0, text.slice(-3000));
    assert.match(text, /Compressed uploads/, "the compressed table is printed");
    const report = JSON.parse(await Deno.readTextFile(out)) as {
      error: string | null;
      datasets: { codec?: string; compressedBytes?: number; bytes: number }[];
      results: {
        method: string;
        compression: string;
        valid: boolean;
        problems?: string[];
        fileBytes: number;
        compressedBytes: number | null;
        ratioToCopy: number | null;
        ratioToPlainCopy: number | null;
        checksumMatchesCopy: boolean | null;
        pipeline?: {
          compressed?: {
            jobCodec: string | null;
            dataSize: number | null;
            steps: number;
            chainSeconds: number | null;
            inflate: { cpuMs: { n: number; p95: number | null }; peakMemoryMb: { n: number } };
            load: { cpuMs: { n: number; p95: number | null }; peakMemoryMb: { n: number } };
          };
        };
      }[];
    };
    assert.equal(report.error, null);
    for (const codec of ["gzip", "multi"]) {
      const dataset = report.datasets.find((d) => d.codec === codec);
      assert.ok(dataset && dataset.compressedBytes! > 0 && dataset.compressedBytes! < dataset.bytes, codec);
      const runs = report.results.filter((r) => r.compression === codec);
      const copy = runs.find((r) => r.method === "psql \\copy");
      const pipeline = runs.find((r) => r.method === "pipeline");
      for (const r of [copy, pipeline]) {
        assert.ok(r, `${codec}: both measured: ${text.slice(-2000)}`);
        assert.ok(r.valid, `${codec} ${r.method}: ${JSON.stringify(r.problems)}`);
        assert.ok(typeof r.ratioToCopy === "number" && r.ratioToCopy > 0);
        assert.equal(r.ratioToPlainCopy, null, "no plain \\copy was measured");
        assert.equal(r.compressedBytes, dataset!.compressedBytes);
      }
      assert.equal(copy!.ratioToCopy, 1);
      assert.equal(pipeline!.checksumMatchesCopy, true);
      const c = pipeline!.pipeline!.compressed!;
      assert.equal(c.jobCodec, "gzip", "both codecs are gzip streams to the pipeline");
      assert.equal(c.dataSize, pipeline!.fileBytes, "the chain inflated the whole file");
      assert.ok(c.steps >= 1 && c.chainSeconds !== null && c.chainSeconds > 0, JSON.stringify(c));
      assert.ok(c.inflate.cpuMs.n >= 1 && c.inflate.cpuMs.p95! > 0, "the chain's steps are attributed");
      assert.ok(c.load.cpuMs.n >= 1 && c.load.peakMemoryMb.n === c.load.cpuMs.n, "the loads are attributed");
    }
    // The compressed files are cached next to the plain one, keyed like it.
    const cached = [...Deno.readDirSync(new URL("../.data/bench", import.meta.url))].map((e) => e.name);
    for (const name of ["orders-r20000-s42-b0.gzip.csv.gz", "orders-r20000-s42-b0.multi.csv.gz"]) {
      assert.ok(cached.includes(name), `${name} in .data/bench`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
