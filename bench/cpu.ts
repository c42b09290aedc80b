/**
 * CPU accounting from /proc: samples of the database's process tree (the postmaster's), the gateway's tree
 * (Storage, pg_net, function workers), the gateway's own process (every thread of it, no child: the local
 * stand-ins), this process's reaped children (psql, pgloader) and the whole machine, and the seconds of CPU
 * between two samples. The tree less the gateway's own process is the function workers in full: their isolate
 * threads (what the runtime meters, per invocation) plus V8's helper threads (garbage collection) and boots.
 *
 * Minor page faults are counted the same way, per part: on a machine where a fault costs ~10 µs or more
 * (machine_costs.ts), the faults of fresh processes (database backends, function workers) are a visible share of
 * their CPU.
 *
 * Invariant: a tree's CPU and faults count its live processes and what its exited children left in
 * cutime/cstime and cminflt, so an end sample is taken after a settle delay (a finished client's backend is
 * reaped a moment after the client).
 */
import { parseProcStat, type ProcStat, type RunFaults, treeFaults, treeTicks } from "./bench_lib.ts";
import { sleep, sql, STATE_DIR } from "./context.ts";

/** Clock ticks per second (getconf CLK_TCK); bench/main.ts sets it at start. */
let clockTicks = 100;
export function setClockTicks(ticks: number) {
  clockTicks = ticks;
}

async function readStat(pid: number | "self"): Promise<ProcStat | null> {
  try {
    return parseProcStat(await Deno.readTextFile(`/proc/${pid}/stat`));
  } catch {
    return null;
  }
}

async function allStats(): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await readStat(Number(entry.name));
    if (stat) out.push(stat);
  }
  return out;
}

async function postmasterPid(): Promise<number | null> {
  try {
    const [{ dir }] = await sql<{ dir: string }[]>`select current_setting('data_directory') as dir`;
    return Number((await Deno.readTextFile(`${dir}/postmaster.pid`)).split("\n")[0]);
  } catch {
    return null;
  }
}

export async function gatewayPid(): Promise<number | null> {
  try {
    return Number((await Deno.readTextFile(`${STATE_DIR}/gateway.pid`)).trim());
  } catch {
    return null;
  }
}

export interface CpuSample {
  at: number;
  db: number | null;
  gateway: number | null;
  gatewaySelf: number | null;
  children: number;
  machineBusy: number;
  machineTotal: number;
  /** Minor page faults of the same parts. */
  faults: { db: number | null; gateway: number | null; gatewaySelf: number | null; children: number };
}

export async function sampleCpu(): Promise<CpuSample> {
  const [stats, pg, gw, self, procStat] = await Promise.all([
    allStats(),
    postmasterPid(),
    gatewayPid(),
    readStat("self"),
    Deno.readTextFile("/proc/stat"),
  ]);
  const cpu = procStat.split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const gatewayStat = gw ? stats.find((st) => st.pid === gw) : undefined;
  const idle = cpu[3] + (cpu[4] ?? 0);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return {
    at: performance.now(),
    db: pg ? treeTicks(stats, pg) : null,
    gateway: gw ? treeTicks(stats, gw) : null,
    gatewaySelf: gatewayStat ? gatewayStat.utime + gatewayStat.stime : null,
    children: self ? self.cutime + self.cstime : 0,
    machineBusy: total - idle,
    machineTotal: total,
    faults: {
      db: pg ? treeFaults(stats, pg) : null,
      gateway: gw ? treeFaults(stats, gw) : null,
      gatewaySelf: gatewayStat ? gatewayStat.minflt : null,
      children: self ? self.cminflt : 0,
    },
  };
}

export interface CpuDelta {
  dbSeconds: number | null;
  gatewaySeconds: number | null;
  /** The gateway process alone (all its threads, no child): the local stand-ins. */
  gatewaySelfSeconds: number | null;
  /** The gateway's tree less its own process: the function workers' processes in full. */
  functionSeconds: number | null;
  clientSeconds: number;
  machineBusyCores: number;
  /** Minor page faults of the same parts: the function workers and the stand-ins split as for the CPU. */
  faults: RunFaults & { client: number };
}

/**
 * Samples at the end of a measurement: the machine at once, the process trees after a settle delay (a finished
 * client's database backend exits, and is reaped into the postmaster's cutime, a moment after the client does).
 */
export async function endSample(start: CpuSample, settleMs = 1000): Promise<CpuDelta> {
  const now = await sampleCpu();
  await sleep(settleMs);
  const settled = await sampleCpu();
  return {
    ...cpuDelta(start, settled),
    machineBusyCores: cpuDelta(start, now).machineBusyCores,
  };
}

function cpuDelta(a: CpuSample, b: CpuSample): CpuDelta {
  const d = (x: number | null, y: number | null) => (x === null || y === null ? null : y - x);
  const s = (x: number | null, y: number | null) => (x === null || y === null ? null : (y - x) / clockTicks);
  // The function workers: the gateway's tree less the gateway itself (never below 0: two readings of a tree).
  const less = (tree: number | null, self: number | null) =>
    tree === null || self === null ? null : Math.max(0, tree - self);
  const cores = navigator.hardwareConcurrency || 1;
  const gatewaySeconds = s(a.gateway, b.gateway);
  const gatewaySelfSeconds = s(a.gatewaySelf, b.gatewaySelf);
  const standInFaults = d(a.faults.gatewaySelf, b.faults.gatewaySelf);
  return {
    dbSeconds: s(a.db, b.db),
    gatewaySeconds,
    gatewaySelfSeconds,
    functionSeconds: less(gatewaySeconds, gatewaySelfSeconds),
    clientSeconds: (b.children - a.children) / clockTicks,
    faults: {
      db: d(a.faults.db, b.faults.db),
      functions: less(d(a.faults.gateway, b.faults.gateway), standInFaults),
      standIns: standInFaults,
      client: b.faults.children - a.faults.children,
    },
    machineBusyCores: b.machineTotal > a.machineTotal
      ? ((b.machineBusy - a.machineBusy) / (b.machineTotal - a.machineTotal)) * cores
      : 0,
  };
}
