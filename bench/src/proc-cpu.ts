// CPU time of another process and of each of its threads, from /proc (Linux): the link
// benchmark's per-run CPU of the platform and the gateway, which holds on a loaded machine
// where wall times do not.
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ 100 on Linux

/** utime + stime in ms from a /proc stat line; NaN when unreadable. */
function statCpuMs(file: string): number {
  try {
    // Fields after the command name: state is index 0, utime 11, stime 12.
    const fields = readFileSync(file, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}

/** CPU the process `pid` has used so far, in ms (NaN where /proc cannot say). */
export const processCpuMs = (pid: number | undefined): number => (pid === undefined ? Number.NaN : statCpuMs(`/proc/${pid}/stat`));

/** CPU each thread of `pid` has used so far, in ms, by thread id. */
export function threadCpuMs(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`);
    if (!Number.isNaN(ms)) out.set(tid, ms);
  }
  return out;
}

/** A thread's name (node names its threads: the main one, libuv-worker, V8 DefaultWorke, a worker thread's), or '' where unreadable. */
function threadName(pid: number | undefined, tid: string): string {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The threads of `pid` that used the most CPU between two readings: `tid(name):ms` (largest first). */
export function topThreads(before: Map<string, number>, after: Map<string, number>, count = 6, pid?: number): string {
  return [...after]
    .map(([tid, ms]) => [tid, ms - (before.get(tid) ?? 0)] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([tid, ms]) => `${tid}${pid === undefined ? '' : `(${threadName(pid, tid)})`}:${ms}`)
    .join(' ');
}
