/**
 * The benchmark end to end, small (against the real local stack): `bench/main.ts` on 5,000 rows at width 2 writes
 * a report whose `psql \copy` baseline and pipeline run are both measured and valid (row count and checksum
 * checked by the bench itself), with the CPU split the table shows. Why a test: the bench is a command, run by
 * hand, and a change to the stack once broke every baseline unnoticed (CHECKPOINT refused to the non-superuser
 * `postgres`). Timing is not asserted (the ratios are the bench's business, not a pass/fail).
 */
import assert from "node:assert/strict";

Deno.test({
  name: "bench: a small run measures \\copy and the pipeline, both valid",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/report.json`;
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        new URL("./main.ts", import.meta.url).pathname,
        "--rows",
        "5000",
        "--widths",
        "2",
        "--skip-pgloader",
        "--wait-idle",
        "60",
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, text.slice(-3000));
    const report = JSON.parse(await Deno.readTextFile(out)) as {
      error: string | null;
      results: {
        method: string;
        valid: boolean;
        problems?: string[];
        ratioToCopy: number | null;
        pipeline?: { functionsCpuSeconds: number };
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
