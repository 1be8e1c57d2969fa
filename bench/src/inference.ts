// node bench/dist/inference.js: frames/s of an ONNX model through the whole platform path
// (request, queue, fetch, checksum, decode, isolated thread, ONNX Runtime, result) against the
// same algorithm work on a raw ONNX Runtime session (same model, frames, conversion, batches and
// threads), measured in the same run;
// and the latency of one 60-frame 512x512 run from request to result.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Session } from 'node:inspector/promises';
import { Worker as Thread } from 'node:worker_threads';
import { decodeFrames, synthesizeXaRun } from '@arteria/dicom';
import { sha256Digest } from '@arteria/inference';
import { EmbeddedPlatform } from '@arteria/platform';
import { createS3Client } from '@arteria/engine-s3';
import { lineChartSvg } from '@arteria/scaling';
import { FRAME_CNN_SHAPES, frameCnn } from './frame-model.js';
import type { RawRound, RawRoundDone, RawThreadData } from './inference-raw-thread.js';
import { BenchDevice } from './devices.js';
import { ThreadCpu, addTotals, formatTotals } from './thread-cpu.js';

const FRAMES = 60;
const SIZE = 512;
const RUNS = Number(process.env.BENCH_INFERENCE_RUNS ?? 8);
const ROUNDS = Number(process.env.BENCH_INFERENCE_ROUNDS ?? 3);
const THREADS = Number(process.env.BENCH_INFERENCE_THREADS ?? 2);
const WORKERS = Number(process.env.BENCH_INFERENCE_WORKERS ?? THREADS);
const BATCH = 16;
const LATENCY_SAMPLES = 5;
const TARGET_RATIO = 0.9;
const SECRET = 'bench-tenant-secret-0123456789';
const BUCKET = 'arteria-runs';

/** Each run's CPU on its own thread inside `run` (platform) and per run in the raw threads, from /proc. */
const RUN_CPU = process.env.BENCH_INFERENCE_RUN_CPU === '1';

// The algorithm: frames to float in [0, 1], the model over batches of BATCH frames. With
// RUN_CPU it also reports the CPU its thread spent inside run (runCpuMs), as the raw threads do.
const ENTRY = `
const BATCH = ${BATCH};
${RUN_CPU ? "import { readFileSync } from 'node:fs';\nconst cpuMs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;" : 'const cpuMs = () => undefined;'}
export default {
  async run({ frames }, { inference }) {
    const started = cpuMs();
    const [model] = await inference.describe();
    const { frameCount: n, rows, columns, bitsStored, pixels } = frames;
    const scale = 1 / (2 ** bitsStored - 1);
    const plane = rows * columns;
    let sum = 0;
    for (let start = 0; start < n; start += BATCH) {
      const count = Math.min(BATCH, n - start);
      const src = pixels.subarray(start * plane, (start + count) * plane);
      const data = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) data[i] = src[i] * scale;
      const [scores] = await inference.infer(model, [{ name: 'frames', type: 'float32', dims: [count, 1, rows, columns], data }]);
      for (let i = 0; i < scores.data.length; i += 2) sum += scores.data[i];
    }
    const ended = cpuMs();
    return ended === undefined ? { frames: n, meanScore: sum / n } : { frames: n, meanScore: sum / n, runCpuMs: ended - started };
  },
};
`;

async function writeAlgorithm(dir: string, name: string, model: Uint8Array): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.js'), ENTRY);
  await writeFile(path.join(dir, 'model.onnx'), model);
  const manifest = {
    name,
    version: '1.0.0',
    title: `Benchmark: ${name}`,
    runtime: 'onnx',
    entry: 'index.js',
    model: { name, file: 'model.onnx', sha256: sha256Digest(model).slice(7) },
    input: { modalities: ['XA'], minFrames: 1, maxFrames: 1000, maxRows: 1024, maxColumns: 1024 },
    outputSchema: { type: 'object', required: ['frames', 'meanScore'] },
    resources: { memoryMb: 512, timeoutMs: 120_000, gpu: false },
    intendedUse: 'Benchmarking only.',
    limitations: ['Not a clinical algorithm.'],
    regulatoryClass: 'none',
  };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
}

/**
 * The algorithm's own work without the platform: the same decoded frames, the same
 * conversion to float and the same batches, through THREADS sessions (intra-op 1), each in
 * its own thread as in the platform (onnxruntime-node runs a session on the calling thread).
 */
class RawBaseline {
  private constructor(private readonly threads: Thread[]) {}

  static async start(model: Uint8Array): Promise<RawBaseline> {
    const data: RawThreadData = { model, frames: FRAMES, size: SIZE, batch: BATCH };
    const threads = Array.from({ length: THREADS }, () => new Thread(new URL('./inference-raw-thread.js', import.meta.url), { workerData: data }));
    try {
      await Promise.all(threads.map((t) => nextMessage(t)));
    } catch (err) {
      await Promise.all(threads.map((t) => t.terminate()));
      throw err;
    }
    return new RawBaseline(threads);
  }

  /** Runs every run once, shared out to the threads as they free up, like the platform's queue; `runCpuMs` gets each run's CPU on its thread. */
  async measure(runs: readonly Uint8Array[], runCpuMs: number[] = []): Promise<Rate> {
    const round: RawRound = { runs: [...runs], next: new Int32Array(new SharedArrayBuffer(4)) };
    const start = startClock();
    const done = this.threads.map((t) => nextMessage(t));
    for (const t of this.threads) t.postMessage(round);
    const answers = (await Promise.all(done)) as RawRoundDone[];
    const rate = start.rate(runs.length * FRAMES);
    for (const a of answers) runCpuMs.push(...a.runCpuMs);
    return rate;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map(async (t) => {
      const exited = once(t, 'exit');
      t.postMessage('close');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
      await t.terminate();
    }));
  }
}

function nextMessage(thread: Thread): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      thread.off('message', onMessage);
      reject(err);
    };
    const onMessage = (message: unknown): void => {
      thread.off('error', onError);
      resolve(message);
    };
    thread.once('message', onMessage);
    thread.once('error', onError);
  });
}

/** A copy in shared memory, so each round hands the same frames to the threads without copying. */
function shared(pixels: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(pixels.byteLength));
  out.set(pixels);
  return out;
}

/** Frames per wall-clock second, and per CPU-second of this whole process (all threads). */
interface Rate {
  wall: number;
  cpu: number;
}

function startClock(): { rate(frames: number): Rate } {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return {
    rate(frames) {
      const used = process.cpuUsage(cpu);
      return { wall: frames / ((performance.now() - wall) / 1000), cpu: frames / ((used.user + used.system) / 1e6) };
    },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const SHAPES = (process.env.BENCH_INFERENCE_MODELS ?? 'light,standard').split(',') as (keyof typeof FRAME_CNN_SHAPES)[];
for (const shape of SHAPES) if (!(shape in FRAME_CNN_SHAPES)) throw new Error(`BENCH_INFERENCE_MODELS: no model ${shape}; there are ${Object.keys(FRAME_CNN_SHAPES).join(', ')}`);
/** Where to draw the ratio against model cost (SVG); none: no plot. */
const PLOT = process.env.BENCH_INFERENCE_PLOT;
/** Per-thread CPU and page faults over the platform's timed rounds (Linux /proc). */
const THREAD_CPU = process.env.BENCH_INFERENCE_THREAD_CPU === '1';
/** Where to write a V8 CPU profile of the main thread over each timed platform round; none: not profiled. */
const PROFILE_DIR = process.env.BENCH_INFERENCE_PROFILE_DIR;

/** Profiles the main thread from start() to the returned stop(), written to PROFILE_DIR as `name`.cpuprofile. */
async function profileMain(name: string): Promise<() => Promise<void>> {
  if (PROFILE_DIR === undefined) return () => Promise.resolve();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await mkdir(PROFILE_DIR, { recursive: true });
    await writeFile(path.join(PROFILE_DIR, `${name}.cpuprofile`), JSON.stringify(profile));
  };
}

/** One model's outcome: its raw cost and the platform's share of the raw rate. */
interface ModelOutcome {
  shape: string;
  cpuMsPerFrame: number;
  ratio: number;
  cpuRatio: number;
}

async function main(): Promise<void> {
  const threads = THREAD_CPU ? new ThreadCpu() : undefined;
  const tmp = await mkdtemp(path.join(tmpdir(), 'arteria-bench-inference-'));
  threads?.mark('libuv pool');
  const models = new Map(SHAPES.map((shape) => [shape, frameCnn(FRAME_CNN_SHAPES[shape])]));
  const algorithmDirs: string[] = [];
  for (const [shape, model] of models) {
    const dir = path.join(tmp, `frame-cnn-${shape}`);
    await writeAlgorithm(dir, `frame-cnn-${shape}`, model);
    algorithmDirs.push(dir);
  }
  const balloonDir = fileURLToPath(new URL('../../algorithms/balloon-inflation', import.meta.url));
  const withBalloon = existsSync(path.join(balloonDir, 'dist', 'index.js')) && process.env.BENCH_SKIP_BALLOON === undefined;
  if (withBalloon) algorithmDirs.push(balloonDir);

  const platform = await EmbeddedPlatform.start(
    { mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(tmp, 'data'), workers: WORKERS, threadsPerAlgorithm: THREADS, tenants: { bench: SECRET }, algorithmDirs },
    (error) => process.stderr.write(`platform: ${error.message}\n`),
  );
  const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
  const device = await BenchDevice.connect(platform.mqttUrl, SECRET, 'bench', 'cath-lab-1');
  threads?.mark('platform start');
  try {
    const sources = [1, 2].map((seed) => synthesizeXaRun({ seed, rows: SIZE, columns: SIZE, frames: FRAMES, bitsStored: 8 }).bytes);
    const decoded = sources.map((bytes) => decodeFrames(bytes).frames.pixels as Uint8Array);
    const sharedDecoded = decoded.map(shared);
    const rawInputs = Array.from({ length: RUNS }, (_, i) => sharedDecoded[i % sharedDecoded.length] as Uint8Array);
    let uid = 0;
    const upload = (algorithm: string, i: number): ReturnType<BenchDevice['prepare']> =>
      device.prepare(s3, BUCKET, sources[i % sources.length] as Uint8Array, algorithm, `1.2.826.0.1.3680043.10.77.${++uid}`);

    const outcomes: ModelOutcome[] = [];
    process.stdout.write(`${RUNS} runs x ${FRAMES} frames ${SIZE}x${SIZE} (8-bit), model batches of ${BATCH} frames, ${THREADS} threads x ONNX Runtime intra-op 1 (a session per thread) on both sides; ${os.cpus().length} CPUs\n\n`);
    for (const [shape, model] of models) {
      const algorithm = `frame-cnn-${shape}@1`;
      // Warm-up: every algorithm thread with its session, and JIT, on both sides.
      const warm = await Promise.all(Array.from({ length: THREADS }, async (_, i) => device.send(await upload(algorithm, i))));
      const warmFailed = warm.find((w) => w.result.status !== 'ok');
      if (warmFailed !== undefined) throw new Error(`warm-up failed: ${JSON.stringify(warmFailed.result.error)}`);
      threads?.mark(`algorithm threads (${shape})`);
      const baseline = await RawBaseline.start(model);
      threads?.mark('raw baseline threads');
      const perThread = new Map<string, { cpuMs: number; faults: number }>();
      const raw: Rate[] = [];
      const through: Rate[] = [];
      const rawRunCpu: number[] = [];
      const platformRunCpu: number[] = [];
      try {
        await baseline.measure(rawInputs.slice(0, THREADS));
        for (let round = 0; round < ROUNDS; round++) {
          raw.push(await baseline.measure(rawInputs, rawRunCpu));
          const requests = await Promise.all(Array.from({ length: RUNS }, (_, i) => upload(algorithm, i)));
          const window = threads?.start(new Set(['platform start']));
          const profiled = await profileMain(`main-${shape}-round-${round + 1}`);
          const start = startClock();
          const results = await Promise.all(requests.map((r) => device.send(r)));
          through.push(start.rate(RUNS * FRAMES));
          await profiled();
          if (window !== undefined) addTotals(perThread, window.stop());
          const failed = results.filter((r) => r.result.status !== 'ok');
          if (failed.length > 0) throw new Error(`platform runs failed: ${JSON.stringify(failed[0]?.result.error)}`);
          for (const r of results) {
            const cpu = (r.result.output as { runCpuMs?: unknown } | undefined)?.runCpuMs;
            if (typeof cpu === 'number') platformRunCpu.push(cpu);
          }
        }
      } finally {
        await baseline.close();
      }
      const best = (rates: Rate[], key: keyof Rate): number => Math.max(...rates.map((r) => r[key]));
      const ratio = best(through, 'wall') / best(raw, 'wall');
      const cpuRatio = best(through, 'cpu') / best(raw, 'cpu');
      const overheadCpuMs = (FRAMES / best(through, 'cpu') - FRAMES / best(raw, 'cpu')) * 1000;
      const line = (label: string, rates: Rate[], key: keyof Rate): string => `  ${label.padEnd(40)} ${rates.map((r) => r[key].toFixed(1).padStart(7)).join(' ')}   best ${best(rates, key).toFixed(1)}`;
      process.stdout.write(`frame-cnn-${shape} (${(model.byteLength / 1024).toFixed(0)} KiB ONNX): ${(1000 / best(raw, 'cpu')).toFixed(2)} CPU-ms per frame, raw\n`);
      process.stdout.write(`${line('raw ONNX Runtime, frames/s', raw, 'wall')}\n${line('whole platform path, frames/s', through, 'wall')}\n`);
      process.stdout.write(`${line('raw ONNX Runtime, frames per CPU-s', raw, 'cpu')}\n${line('whole platform path, frames per CPU-s', through, 'cpu')}\n`);
      const verdict = (r: number): string => (r >= TARGET_RATIO ? 'meets' : 'below');
      outcomes.push({ shape, cpuMsPerFrame: 1000 / best(raw, 'cpu'), ratio, cpuRatio });
      process.stdout.write(`  ratio platform / raw, frames/s (best of ${ROUNDS}): ${ratio.toFixed(3)} (${verdict(ratio)} target ${TARGET_RATIO}); per CPU-second: ${cpuRatio.toFixed(3)} (${verdict(cpuRatio)}); platform CPU per run beyond the model: ${overheadCpuMs.toFixed(0)} ms\n`);
      if (RUN_CPU) {
        const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
        process.stdout.write(`  CPU-ms per run on the algorithm's own thread (median, mean): raw ${median(rawRunCpu).toFixed(1)}, ${mean(rawRunCpu).toFixed(1)}; inside run() in the platform ${median(platformRunCpu).toFixed(1)}, ${mean(platformRunCpu).toFixed(1)} (${platformRunCpu.length} runs)\n`);
      }
      if (threads !== undefined) process.stdout.write(`  per thread over the platform's timed rounds:\n${formatTotals(perThread, RUNS * ROUNDS)}\n`);
      await latency(device, upload, algorithm);
      process.stdout.write('\n');
    }
    if (withBalloon) await latency(device, upload, 'balloon-inflation@3');
    summarize(outcomes);
  } finally {
    await device.close();
    s3.destroy();
    await platform.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The ratio against model cost: a table, and an SVG plot where BENCH_INFERENCE_PLOT names a file. */
function summarize(outcomes: ModelOutcome[]): void {
  if (outcomes.length === 0) return;
  const sorted = [...outcomes].sort((a, b) => a.cpuMsPerFrame - b.cpuMsPerFrame);
  process.stdout.write(`\nmodel      raw CPU-ms/frame  ratio (frames/s)  ratio (per CPU-s)\n`);
  for (const o of sorted) {
    process.stdout.write(`${o.shape.padEnd(10)} ${o.cpuMsPerFrame.toFixed(2).padStart(16)}  ${o.ratio.toFixed(3).padStart(16)}  ${o.cpuRatio.toFixed(3).padStart(17)}\n`);
  }
  if (PLOT === undefined || sorted.length < 2) return;
  const xs = sorted.map((o) => o.cpuMsPerFrame);
  const svg = lineChartSvg(
    [
      { name: 'frames/s ratio', points: sorted.map((o) => [o.cpuMsPerFrame, o.ratio] as const) },
      { name: 'per CPU-second', points: sorted.map((o) => [o.cpuMsPerFrame, o.cpuRatio] as const) },
      { name: 'target 0.9', points: [[Math.min(...xs), TARGET_RATIO], [Math.max(...xs), TARGET_RATIO]], dashed: true },
    ],
    { title: `Platform / raw ONNX Runtime, ${RUNS} runs of ${FRAMES} frames ${SIZE}x${SIZE}, ${THREADS} threads`, xLabel: 'model cost, raw CPU-ms per frame (log)', yLabel: 'platform / raw', xLog: true },
  );
  writeFileSync(PLOT, svg);
  process.stdout.write(`plot: ${PLOT}\n`);
}

async function latency(device: BenchDevice, upload: (algorithm: string, i: number) => ReturnType<BenchDevice['prepare']>, algorithm: string): Promise<void> {
  const samples: number[] = [];
  let stages = '';
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const { result, latencyMs } = await device.send(await upload(algorithm, i));
    if (result.status !== 'ok') throw new Error(`${algorithm} failed: ${JSON.stringify(result.error)}`);
    samples.push(latencyMs);
    const t = result.timings;
    if (i === LATENCY_SAMPLES - 1 && t.leased !== undefined && t.fetched !== undefined && t.computed !== undefined && t.published !== undefined) {
      stages = `last: queue ${(t.leased - t.published).toFixed(0)} ms, fetch+verify ${(t.fetched - t.leased).toFixed(0)} ms, decode+compute ${(t.computed - t.fetched).toFixed(0)} ms`;
    }
  }
  process.stdout.write(`  latency, one ${FRAMES}-frame ${SIZE}x${SIZE} run, request to result, ${algorithm}: median ${median(samples).toFixed(0)} ms, min ${Math.min(...samples).toFixed(0)}, max ${Math.max(...samples).toFixed(0)} (${stages})\n`);
}

await main();
