// Burns ?ms= milliseconds of CPU time (not wall time, so the figure holds on a busy machine) in a busy
// loop, forever without ?ms=, then answers.
import process from "node:process";

Deno.serve((req) => {
  const ms = Number(new URL(req.url).searchParams.get("ms") ?? "Infinity");
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const start = cpuMs();
  let x = 0;
  while (cpuMs() - start < ms) {
    for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
  }
  return Response.json({ burned: ms, x });
});
