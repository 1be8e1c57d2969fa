import type { BenchDevice, Received } from './devices.js';

export interface LoadOutcome {
  sent: number;
  received: Received[];
  lost: number;
  durationMs: number;
}

/**
 * Open-loop load: requests go out on schedule whatever the latency, as devices do, so
 * queueing shows up in the latencies instead of slowing the sender down.
 */
export async function runLoad(
  devices: readonly BenchDevice[],
  ratePerS: number,
  durationMs: number,
  send: (device: BenchDevice, index: number) => Promise<Received>,
  drainTimeoutMs = 30_000,
): Promise<LoadOutcome> {
  const total = Math.round((ratePerS * durationMs) / 1000);
  const waits: Promise<Received | undefined>[] = [];
  const start = performance.now();
  let index = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * ratePerS) / 1000) + 1);
      while (index < due) {
        const device = devices[index % devices.length];
        if (device) waits.push(withTimeout(send(device, index), drainTimeoutMs));
        index += 1;
      }
      if (index >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const outcomes = await Promise.all(waits);
  const received = outcomes.filter((r): r is Received => r !== undefined);
  return { sent: total, received, lost: total - received.length, durationMs: performance.now() - start };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    void promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
