/**
 * What this machine charges for the kernel work the pipeline does a lot of and `psql \copy` little: a page fault
 * (first touch of fresh memory: a new worker's buffers, a new backend's first touch of shared buffers) and a
 * system call (every network round trip is several). Measured in the bench's own process and recorded beside
 * every report, so that figures from two machines are not compared blind: on 2026-12-05 the same commit measured
 * 0.73× `\copy` at 1M rows on one machine of this kind and 0.52–0.55× on the next, whose page faults cost ~11 µs
 * (a guest whose kernel runs with page-table isolation; ~1 µs is usual) and system calls ~1 µs
 * (docs/performance.md, history).
 *
 * Invariants: takes well under a second; never throws (a cost it cannot measure is null); touches at most
 * FAULT_BYTES of memory, released when it returns.
 */

/** Fresh memory touched, one write per page, to time page faults. */
const FAULT_BYTES = 128 * 1024 * 1024;
const PAGE = 4096;
const SYSCALLS = 100_000;

export type MachineCosts = {
  /** Microseconds per first touch of a fresh 4 KiB page (median of 3 rounds). */
  pageFaultUs: number | null;
  /** Microseconds per cheap system call made from JavaScript (`Deno.uid()`: getuid), op overhead included. */
  syscallUs: number | null;
  /** Milliseconds of a fixed integer loop in JavaScript: the CPU's speed, as a reference for the two above. */
  cpuLoopMs: number;
  /** The kernel's Meltdown mitigation line (`Mitigation: PTI` makes every kernel entry dearer), if it says. */
  meltdown: string | null;
};

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Allocation and first touch of FAULT_BYTES fresh bytes (a large ArrayBuffer is mapped zeroed, faulted in on first write). */
function pageFaultUs(): number | null {
  try {
    const rounds: number[] = [];
    for (let r = 0; r < 3; r++) {
      // Timed from the allocation: were the pages touched there (zeroed by hand), they fault there.
      const started = performance.now();
      const bytes = new Uint8Array(FAULT_BYTES);
      for (let i = 0; i < FAULT_BYTES; i += PAGE) bytes[i] = 1;
      rounds.push(((performance.now() - started) * 1000) / (FAULT_BYTES / PAGE));
    }
    return round(median(rounds), 2);
  } catch {
    return null;
  }
}

function syscallUs(): number | null {
  try {
    const started = performance.now();
    for (let i = 0; i < SYSCALLS; i++) Deno.uid();
    return round(((performance.now() - started) * 1000) / SYSCALLS, 2);
  } catch {
    return null;
  }
}

/** Where the CPU loop leaves its result, so that the compiler cannot drop the loop. */
let sink = 0;

function cpuLoopMs(): number {
  const started = performance.now();
  let x = 1;
  for (let i = 0; i < 50_000_000; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  sink ^= x;
  return round(performance.now() - started, 1);
}

export async function measureMachineCosts(): Promise<MachineCosts> {
  const meltdown = await Deno.readTextFile("/sys/devices/system/cpu/vulnerabilities/meltdown")
    .then((s) => s.trim()).catch(() => null);
  return { pageFaultUs: pageFaultUs(), syscallUs: syscallUs(), cpuLoopMs: cpuLoopMs(), meltdown };
}

if (import.meta.main) console.log(JSON.stringify(await measureMachineCosts()));
