/**
 * Per-process CPU and memory readings from Linux /proc, used to measure and police worker processes.
 *
 * - CPU: first field of `/proc/<pid>/schedstat`, the nanoseconds the process's main thread has spent on a
 *   CPU. Deno runs JavaScript (the isolate) on the main thread, so this is the closest stand-in for the
 *   edge runtime's per-isolate CPU timer; helper threads (GC, I/O pool) are not counted, as there.
 * - Memory: `VmRSS` (resident set now) and `VmHWM` (peak resident set) from `/proc/<pid>/status`, in KiB.
 *   Writing `5` to `/proc/<pid>/clear_refs` resets VmHWM to the current RSS, which starts a new peak window.
 *
 * Invariants: Linux only; the caller must own the process (same uid) for clear_refs. Every function rejects
 * when the process is gone, so callers must treat a rejection as "process exited".
 */

/** Nanoseconds of CPU time used so far by the process's main thread. */
export async function readCpuNs(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/schedstat`);
  return Number(text.split(" ", 1)[0]);
}

/** Current and peak resident set size, in KiB. */
export interface MemoryReading {
  rssKb: number;
  hwmKb: number;
}

/** Reads VmRSS and VmHWM of the process. */
export async function readMemory(pid: number): Promise<MemoryReading> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(match[1]);
  };
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

/** Resets the process's peak RSS (VmHWM) to its current RSS. */
export async function resetPeakMemory(pid: number): Promise<void> {
  await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
}
