// Runs sent while they are acquired, end to end: a gateway (its own process) takes a
// 1024x1024 8-bit XA run frame by frame at the modality's frame rate
// (Gateway.openFrameSource), uploads and announces segments as they fill, and the embedded
// platform (its own process) folds them in as they come. Per row: last frame handed to the
// gateway → final result, first frame → result, partial results, peak RSS of gateway and
// platform; baseline in the same run, on the same bytes, fresh processes: the whole file
// sent once acquired (send → result), what a run costs after its last frame without segments.
//   BENCH_SEGMENTED_SIZES_MB          105,419 (2048 fits on a quiet machine: 2000 frames, 133 s at 15 fps)
//   BENCH_SEGMENTED_ALGORITHMS        contrast-injection,balloon-inflation
//   BENCH_SEGMENTED_FPS               15 (0: frames as fast as the gateway takes them)
//   BENCH_SEGMENTED_FRAMES_PER_SEGMENT 10
//   BENCH_SEGMENTED_WHOLE_MAX_MB      1024 (larger runs: no whole-file baseline)
//   BENCH_SEGMENTED_ENCODING          none (br or auto: the gateway's segmentEncoding)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SegmentEncodingSetting } from '@arteria/protocol';
import { specOf, startGatewayProcess, startPlatformProcess } from './bench-processes.js';
import type { GatewayAnswer, GatewayAsk } from './gateway-child.js';
import { RUN_COLUMNS, RUN_ROWS, framesFor, writeLargeRun } from './stream-run.js';

const SIZES_MB = (process.env.BENCH_SEGMENTED_SIZES_MB ?? '105,419').split(',').map(Number);
const ALGORITHMS = (process.env.BENCH_SEGMENTED_ALGORITHMS ?? 'contrast-injection,balloon-inflation').split(',');
const FPS = Number(process.env.BENCH_SEGMENTED_FPS ?? 15);
const FRAMES_PER_SEGMENT = Number(process.env.BENCH_SEGMENTED_FRAMES_PER_SEGMENT ?? 10);
const WHOLE_MAX_MB = Number(process.env.BENCH_SEGMENTED_WHOLE_MAX_MB ?? 1024);
const ENCODING = SegmentEncodingSetting.catch('none').parse(process.env.BENCH_SEGMENTED_ENCODING);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TENANT_SECRET = 'bench-tenant-secret-0123456789';

const FRAME_BYTES = RUN_ROWS * RUN_COLUMNS;

/** One run through fresh platform and gateway processes: the gateway's answer and the platform's peak RSS. */
async function once(dir: string, ask: GatewayAsk): Promise<GatewayAnswer & { platformPeakRssMb: number; load: number }> {
  await rm(dir, { recursive: true, force: true });
  const platform = await startPlatformProcess({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), workers: 2, tenants: { bench: TENANT_SECRET }, algorithmDirs: ALGORITHMS.map((a) => path.join(ROOT, 'algorithms', a)) });
  try {
    const gateway = await startGatewayProcess({ mqttUrl: platform.mqttUrl, s3Endpoint: platform.s3Endpoint, region: platform.storeCredentials.region, dir: path.join(dir, 'gateway'), tenant: 'bench', tenantSecret: TENANT_SECRET, segmentWholeFilesOverBytes: 0, segmentEncoding: ENCODING }); // the whole-file baseline is the one-shot protocol
    try {
      const answer = await gateway.run(ask);
      if (answer.status !== 'ok') throw new Error(`${ask.kind} ${ask.algorithm}: ${answer.status} ${answer.error ?? ''}`);
      return { ...answer, platformPeakRssMb: await platform.peakRssMb(), load: loadavg()[0] ?? Number.NaN };
    } finally {
      await gateway.stop();
    }
  } finally {
    await platform.stop();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-segmented-'));
  const rows: Record<string, number | string>[] = [];
  try {
    for (const mb of SIZES_MB) {
      const frames = framesFor(mb);
      const file = path.join(dir, `run-${mb}.dcm`);
      const { size } = await writeLargeRun(file, frames, 43);
      const headerBytes = size - frames * FRAME_BYTES;
      for (const algorithm of ALGORITHMS) {
        const spec = specOf(algorithm);
        const streamed = await once(path.join(dir, 'row'), { kind: 'stream', file, headerBytes, frames, frameBytes: FRAME_BYTES, fps: FPS, framesPerSegment: FRAMES_PER_SEGMENT, algorithm: spec });
        const whole = size / 1e6 <= WHOLE_MAX_MB ? await once(path.join(dir, 'row'), { kind: 'whole', file, algorithm: spec }) : undefined;
        const tail = streamed.resultAt - streamed.lastFrameAt;
        const wholeMs = whole === undefined ? Number.NaN : whole.resultAt - whole.startAt;
        const row = {
          run: `${(size / 1e6).toFixed(0)} MB, ${frames} frames`,
          algorithm,
          'acquisition s': Number((frames / (FPS || Number.POSITIVE_INFINITY)).toFixed(1)),
          'last frame → result ms': tail,
          // The gateway's own lag and the platform's part: the run-end's `acquired` stamp (the gateway had every segment out) → result.
          'run-end → result ms': streamed.timings?.acquired === undefined ? Number.NaN : Math.round(streamed.resultAt - streamed.timings.acquired),
          'first frame → result s': Number(((streamed.resultAt - streamed.startAt) / 1000).toFixed(1)),
          partials: streamed.partials,
          'gateway peak RSS MB': Math.round(streamed.peakRssMb),
          'platform peak RSS MB': Math.round(streamed.platformPeakRssMb),
          'whole file: send → result ms': wholeMs,
          'whole: gateway / platform peak RSS MB': whole === undefined ? '-' : `${Math.round(whole.peakRssMb)} / ${Math.round(whole.platformPeakRssMb)}`,
          'tail / whole': Number((tail / wholeMs).toFixed(2)),
          'load (1 min)': `${streamed.load.toFixed(1)}${whole === undefined ? '' : ` / ${whole.load.toFixed(1)}`}`,
        };
        rows.push(row);
        const at = (t: number | undefined): string => (t === undefined ? '-' : `${t - streamed.lastFrameAt}`);
        process.stderr.write(`  after the last frame (ms): ${Object.entries(streamed.timings ?? {}).map(([k, v]) => `${k} ${at(v)}`).join(', ')}\n`);
        process.stdout.write(`${JSON.stringify(row)}\n`);
      }
      await rm(file, { force: true });
    }
    console.table(rows);
    const results = path.join(ROOT, 'bench', 'results');
    await mkdir(results, { recursive: true });
    await writeFile(path.join(results, 'segmented.json'), `${JSON.stringify({ at: new Date().toISOString(), fps: FPS, framesPerSegment: FRAMES_PER_SEGMENT, encoding: ENCODING, rows }, null, 2)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
