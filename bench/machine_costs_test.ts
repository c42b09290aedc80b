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
  const costs = await measureMachineCosts();
  const faulted = (await minorFaults()) - before;
  // Three rounds of 128 MiB in 4 KiB pages: 98,304 first touches (a few may be served by huge pages: 90 %).
  assert(faulted >= 0.9 * 3 * 32768, `only ${faulted} page faults during the probe`);
  assert(costs.pageFaultUs !== null && costs.pageFaultUs > 0, `page fault: ${costs.pageFaultUs}`);
  assert(costs.syscallUs !== null && costs.syscallUs > 0, `system call: ${costs.syscallUs}`);
  assert(costs.cpuLoopMs > 0, `CPU loop: ${costs.cpuLoopMs}`);
  assert(typeof costs.meltdown === "string" || costs.meltdown === null);
});
