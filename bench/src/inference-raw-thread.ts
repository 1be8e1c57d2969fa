// One thread of the raw ONNX Runtime baseline: its own session (intra-op 1), runs taken from
// a shared counter, so the baseline uses as many cores as the platform's algorithm threads.
// onnxruntime-node runs a session on the calling JS thread: sessions sharing one thread would
// take turns on one core.
import { parentPort, workerData } from 'node:worker_threads';
import { threadCpuMs } from './thread-cpu.js';
import * as ort from 'onnxruntime-node';
import { toModelInput } from './frame-model.js';

export interface RawThreadData {
  model: Uint8Array;
  frames: number;
  size: number;
  batch: number;
}

/** What a thread answers after a round: the CPU-ms its own thread spent on each run it took. */
export interface RawRoundDone {
  runCpuMs: number[];
}

/** One round: runs[i] are decoded 8-bit frames; `next` is the shared index of the next run to take. */
export interface RawRound {
  runs: Uint8Array[];
  next: Int32Array;
}

const port = parentPort;
if (port === null) throw new Error('inference-raw-thread must run in a worker thread');
const { model, frames, size, batch } = workerData as RawThreadData;
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
const plane = size * size;

port.on('message', (message: RawRound | 'close') => {
  if (message === 'close') {
    session.release().then(() => port.close(), () => port.close());
    return;
  }
  void (async () => {
    const { runs, next } = message;
    const runCpuMs: number[] = [];
    for (let r = Atomics.add(next, 0, 1); r < runs.length; r = Atomics.add(next, 0, 1)) {
      const started = threadCpuMs();
      const pixels = runs[r] as Uint8Array;
      for (let f = 0; f < frames; f += batch) {
        const count = Math.min(batch, frames - f);
        const data = toModelInput(pixels.subarray(f * plane, (f + count) * plane), 255);
        await session.run({ frames: new ort.Tensor('float32', data, [count, 1, size, size]) });
      }
      runCpuMs.push(threadCpuMs() - started);
    }
    port.postMessage({ runCpuMs } satisfies RawRoundDone);
  })();
});
port.postMessage('ready');
