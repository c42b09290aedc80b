/** bench/machine_costs.ts: the probe measures what it says (page faults happen in it), and every cost is set. */
import assert from "node:assert/strict";
import { measureMachineCosts } from "./machine_costs.ts";

/** Minor page faults of this process so far (/proc/self/stat, field 10). */
async function minorFaults(): Promise<number> {
  const stat = await Deno.readTextFile("/proc/self/stat");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

Deno.test("machine costs: the page-fault probe really faults its pages, and every cost is measured", async () => {
  const before = await minorFaults();
  const started = performance.now();
  const costs = await measureMachineCosts();
  const elapsedUs = (performance.now() - started) * 1000;
  const faulted = (await minorFaults()) - before;
  // Three rounds of 128 MiB in 4 KiB pages: 98,304 first touches (a few may be served by huge pages: 90 %).
  assert(faulted >= 0.9 * 3 * 32768, `only ${faulted} page faults during the probe`);
  // Each figure is per event: one page-fault round (the median round is no longer than the three together), the
  // system calls and the loop fit in the time the probe took, and a page fault (which at least zeroes 4 KiB) or
  // a system call through Deno's ops costs more than 0.02 µs anywhere. (Three times the median can exceed the
  // three rounds when one is quick: 14.45 µs × 3 rounds came to more than a 1,620 ms probe once.)
  const { pageFaultUs, syscallUs, cpuLoopMs } = costs;
  assert(pageFaultUs !== null && syscallUs !== null, JSON.stringify(costs));
  assert(pageFaultUs > 0.02 && syscallUs > 0.02 && cpuLoopMs > 0, JSON.stringify(costs));
  assert(
    pageFaultUs * 32768 + syscallUs * 100_000 + cpuLoopMs * 1000 <= elapsedUs,
    `${JSON.stringify(costs)} add up to more than the ${Math.round(elapsedUs / 1000)} ms the probe took`,
  );
  assert(typeof costs.meltdown === "string" || costs.meltdown === null);
});
