// Per-thread CPU time and minor page faults of this process, from /proc/self/task (Linux).
// Node names none of its threads, so threads are told apart by when they appeared: mark()
// files every thread not seen before under a label.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

interface Counters {
  cpuMs: number;
  faults: number;
}

type Snapshot = Map<string, Counters>;

const TICK_MS = 10; // USER_HZ 100 on Linux

function read(): Snapshot {
  const out: Snapshot = new Map();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      // Fields after the command name: state is index 0, minflt 7, utime 11, stime 12.
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      out.set(tid, { cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS, faults: Number(fields[7]) });
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return out;
}

export class ThreadCpu {
  readonly #labels = new Map<string, string>();

  /**
   * Threads that exist already: the main one, V8's platform pool (`--v8-pool-size`,
   * default 4, started with the process) and, when it was started, libuv's pool.
   */
  constructor(v8PoolSize = 4) {
    const main = readlinkSync('/proc/thread-self').split('/').pop() ?? '';
    this.#labels.set(main, 'main');
    const others = [...read().keys()].filter((tid) => tid !== main).sort((a, b) => Number(a) - Number(b));
    others.forEach((tid, i) => this.#labels.set(tid, i < v8PoolSize ? 'v8 platform' : 'libuv pool'));
  }

  /** Files every thread not labelled yet under `label`. */
  mark(label: string): void {
    for (const tid of read().keys()) if (!this.#labels.has(tid)) this.#labels.set(tid, label);
  }

  /** Starts a window; stop() gives each label's CPU and faults in it (each thread on its own for labels in `split`). */
  start(split: ReadonlySet<string> = new Set()): { stop(): Map<string, Counters> } {
    const before = read();
    return {
      stop: () => {
        const totals = new Map<string, Counters>();
        for (const [tid, now] of read()) {
          const was = before.get(tid) ?? { cpuMs: 0, faults: 0 };
          const label = split.has(this.#labels.get(tid) ?? '') ? `${this.#labels.get(tid)} ${tid}` : (this.#labels.get(tid) ?? 'other');
          const sum = totals.get(label) ?? { cpuMs: 0, faults: 0 };
          sum.cpuMs += now.cpuMs - was.cpuMs;
          sum.faults += now.faults - was.faults;
          totals.set(label, sum);
        }
        return totals;
      },
    };
  }
}

/** Adds window totals into `into`. */
export function addTotals(into: Map<string, Counters>, add: Map<string, Counters>): void {
  for (const [label, c] of add) {
    const sum = into.get(label) ?? { cpuMs: 0, faults: 0 };
    sum.cpuMs += c.cpuMs;
    sum.faults += c.faults;
    into.set(label, sum);
  }
}

/** One line per label: CPU-ms and faults per run. */
export function formatTotals(totals: Map<string, Counters>, runs: number): string {
  return [...totals]
    .filter(([, c]) => c.cpuMs > 0 || c.faults > 0)
    .sort((a, b) => b[1].cpuMs - a[1].cpuMs)
    .map(([label, c]) => `    ${label.padEnd(28)} ${(c.cpuMs / runs).toFixed(1).padStart(7)} CPU-ms/run ${(c.faults / runs).toFixed(0).padStart(7)} faults/run`)
    .join('\n');
}

/**
 * CPU time of the calling thread so far, in ms with ns resolution (Linux
 * /proc/thread-self/schedstat; NaN elsewhere). Read around one run, it gives that run's CPU
 * on its own thread, finer than the 10 ms ticks of `stat`.
 */
export function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}
