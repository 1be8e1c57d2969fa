import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestLedger, ResultPublisher, WorkQueue } from '@arteria/ports';
import { Worker, type AlgorithmExecutor } from '@arteria/worker';

/**
 * Runs a worker until the queue is dry (nothing ready, in flight or delayed, nothing in
 * hand), then drains it. Every input is ten zero bytes; `execute` decides the outcome.
 */
export async function runWorkerDry(ports: { queue: WorkQueue; ledger: RequestLedger; results: ResultPublisher }, execute: AlgorithmExecutor['execute']): Promise<void> {
  const { queue } = ports;
  const worker = new Worker(
    {
      ...ports,
      inputs: {
        fetch: () => Promise.resolve(Buffer.alloc(10)),
        stream: async function* () {
          yield await Promise.resolve(Buffer.alloc(10));
        },
      },
      executor: { execute },
    },
    { visibilityMs: 10_000, leaseWaitMs: 50, maxInputBytes: 1_000, maxDeliveries: 2 },
  );
  worker.start();
  for (let i = 0; i < 400; i++) {
    const stats = await queue.stats();
    if (stats.ready + stats.inFlight + stats.delayed === 0 && !worker.busy) break;
    await sleep(25);
  }
  await worker.drain();
}
