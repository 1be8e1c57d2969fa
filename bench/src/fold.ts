// The algorithms' share of a run sent in segments, in this process: each algorithm's
// incremental contract folds a 1024x1024 8-bit XA run segment by segment (onFrames, then
// finish), with ONNX Runtime configured as the platform's algorithm threads are (one
// thread). Figures are CPU time, so they hold on a loaded machine: MB of pixels folded per
// CPU second against the 125 MB/s of a 1 Gb/s link, and the model's share of it. The
// platform's own costs (store, hashing, queue, the thread's messages) are not in them.
//   BENCH_FOLD_SIZES_MB        419
//   BENCH_FOLD_ALGORITHMS      balloon-inflation,contrast-injection
//   BENCH_FOLD_SEGMENT_FRAMES  16 (16 MiB, the gateway's wholeFileSegmentBytes)
//   BENCH_FOLD_ROUNDS          3
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeFrames, synthesizeXaRun, type DicomHeader, type FrameStack } from '@arteria/dicom';
import { OnnxRuntimeBackend } from '@arteria/inference';
import { RUN_COLUMNS, RUN_ROWS, framesFor } from './stream-run.js';

const SIZES_MB = (process.env.BENCH_FOLD_SIZES_MB ?? '419').split(',').map(Number);
const ALGORITHMS = (process.env.BENCH_FOLD_ALGORITHMS ?? 'balloon-inflation,contrast-injection').split(',');
const SEGMENT_FRAMES = Number(process.env.BENCH_FOLD_SEGMENT_FRAMES ?? 16);
const ROUNDS = Number(process.env.BENCH_FOLD_ROUNDS ?? 3);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RENDERED_FRAMES = 25;
const LINK_MB_PER_S = 125;

type Context = { signal: AbortSignal; inference: OnnxRuntimeBackend };
/** What this benchmark calls of an algorithm's incremental contract (`@arteria/sdk`'s IncrementalAlgorithm). */
interface Incremental {
  createState(start: { header: DicomHeader; layout: Omit<FrameStack, 'pixels' | 'frameCount'> }, context: Context): unknown;
  onFrames(state: unknown, segment: { firstFrame: number; frames: FrameStack }, context: Context): unknown;
  finish(state: unknown, context: Context): unknown;
}

async function incrementalOf(name: string): Promise<Incremental> {
  const module = (await import(pathToFileURL(path.join(ROOT, 'algorithms', name, 'dist', 'index.js')).href)) as { default?: { incremental?: Incremental } };
  const incremental = module.default?.incremental;
  if (typeof incremental?.onFrames !== 'function') throw new Error(`${name} has no incremental contract`);
  return incremental;
}

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** The backend, with the CPU time spent in its calls added up (ONNX Runtime computes on the calling thread with one intra-op thread). */
function timedBackend(): { backend: OnnxRuntimeBackend; modelMs: () => number } {
  const backend = new OnnxRuntimeBackend();
  const infer = backend.infer.bind(backend);
  let spent = 0;
  backend.infer = async (...args) => {
    const started = cpuMs();
    try {
      return await infer(...args);
    } finally {
      spent += cpuMs() - started;
    }
  };
  return { backend, modelMs: () => spent };
}

async function main(): Promise<void> {
  const rendered = synthesizeXaRun({ seed: 47, rows: RUN_ROWS, columns: RUN_COLUMNS, frames: RENDERED_FRAMES, bitsStored: 8, frameRateHz: 15 });
  const { header, frames: stack } = decodeFrames(rendered.bytes);
  const { pixels: _pixels, frameCount: _count, ...layout } = stack;
  const plane = RUN_ROWS * RUN_COLUMNS;
  const { backend, modelMs } = timedBackend();
  const context: Context = { signal: new AbortController().signal, inference: backend };
  const rows: Record<string, number | string>[] = [];
  try {
    for (const mb of SIZES_MB) {
      const frames = framesFor(mb);
      // The segment's pixels: the rendered run stretched over `frames` frames, as the large runs of the other benchmarks.
      const segmentOf = (first: number, count: number): FrameStack => {
        const pixels = new Uint8Array(count * plane);
        for (let f = 0; f < count; f++) {
          const source = Math.floor(((first + f) * RENDERED_FRAMES) / frames);
          pixels.set(stack.pixels.subarray(source * plane, (source + 1) * plane), f * plane);
        }
        return { ...layout, frameCount: count, pixels };
      };
      for (const name of ALGORITHMS) {
        const incremental = await incrementalOf(name);
        const rates: number[] = [];
        const shares: number[] = [];
        const loads: number[] = [];
        // One round first to load the model and warm the code, not counted.
        for (let round = -1; round < ROUNDS; round++) {
          const modelBefore = modelMs();
          let spent = 0;
          const state = incremental.createState({ header, layout }, context);
          for (let first = 0; first < frames; first += SEGMENT_FRAMES) {
            const segment = segmentOf(first, Math.min(SEGMENT_FRAMES, frames - first));
            const started = cpuMs();
            await incremental.onFrames(state, { firstFrame: first, frames: segment }, context);
            spent += cpuMs() - started;
          }
          const started = cpuMs();
          await incremental.finish(state, context);
          spent += cpuMs() - started;
          if (round < 0) continue;
          rates.push((frames * plane) / 1e6 / (spent / 1000));
          shares.push((modelMs() - modelBefore) / spent);
          loads.push(loadavg()[0] ?? Number.NaN);
        }
        const row = {
          run: `${((frames * plane) / 1e6).toFixed(0)} MB, ${frames} frames`,
          algorithm: name,
          'segment frames': SEGMENT_FRAMES,
          'MB per CPU s (rounds)': rates.map((r) => r.toFixed(0)).join(', '),
          'x link (best)': Number((Math.max(...rates) / LINK_MB_PER_S).toFixed(1)),
          'model share': shares.map((s) => `${Math.round(s * 100)} %`).join(', '),
          'load (1 min)': loads.map((l) => l.toFixed(1)).join(', '),
        };
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
      }
    }
    console.table(rows);
  } finally {
    await backend.close();
  }
}

await main();
