// Probes the per_worker limits: burns ?burn= ms of CPU time of its own in 10 ms slices (yielding between
// them, so a beforeunload can be dispatched), forever with ?burn=Infinity, or until a beforeunload arrives with
// ?untilBeforeunload=1; holds ?hold= MB of memory (touched) while it runs; sleeps ?sleep= ms; appends every beforeunload it sees to ?file= as a JSON line; answers
// with its execution id and the beforeunload reasons seen so far.
import process from "node:process";

const seen: string[] = [];
let file = "";
addEventListener("beforeunload", (event) => {
  const reason = (event as CustomEvent<{ reason: string }>).detail?.reason;
  seen.push(reason);
  if (file !== "") {
    Deno.writeTextFileSync(file, JSON.stringify({ reason, cancelable: event.cancelable }) + "\n", {
      append: true,
    });
  }
});

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

Deno.serve(async (req) => {
  const params = new URL(req.url).searchParams;
  file = params.get("file") ?? file;
  const burn = Number(params.get("burn") ?? "0");
  const untilBeforeunload = params.get("untilBeforeunload") === "1";
  const sleep = Number(params.get("sleep") ?? "0");
  const held = new Uint8Array(Number(params.get("hold") ?? "0") * 1024 * 1024).fill(1);
  const before = seen.length;
  // Only this request's own slices count (other requests of the same worker burn between them).
  let burnt = 0;
  let x = 0;
  while (burnt < burn && !(untilBeforeunload && seen.length > before)) {
    const slice = cpuMs();
    while (cpuMs() - slice < 10) {
      for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
    }
    burnt += cpuMs() - slice;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  if (sleep > 0) await new Promise((resolve) => setTimeout(resolve, sleep));
  return Response.json({
    executionId: Deno.env.get("SB_EXECUTION_ID"),
    beforeunload: seen,
    x,
    held: held.length,
  });
});
