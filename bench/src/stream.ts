// Streaming worker vs the whole-file path, on large synthetic runs (1024x1024 8-bit XA).
// Each measurement runs in a fresh process (bench/src/stream-child.ts) so that its peak
// RSS is its own: time from the start of the input's read to the algorithm's output
// (what the worker adds between leasing a task and publishing its result), and the
// process's peak RSS. The order of the two paths alternates each round.
//   BENCH_STREAM_SIZES_MB   run sizes (default 105; the figures: 105,419,2048)
//   BENCH_STREAM_ROUNDS     rounds per size and path (default 2)
//   BENCH_STREAM_ALGORITHMS contrast-injection (default), balloon-inflation
//   BENCH_STREAM_WHOLE_MAX_MB  largest run also measured the whole-file way (default 1024)
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { InputRef } from '@arteria/protocol';
import { EMBEDDED_S3_CREDENTIALS } from '@arteria/platform';
import { EmbeddedObjectStore, createS3Client } from '@arteria/engine-s3';
import { framesFor, writeLargeRun } from './stream-run.js';

const exec = promisify(execFile);
const SIZES_MB = (process.env.BENCH_STREAM_SIZES_MB ?? '105').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 2);
const ALGORITHMS = (process.env.BENCH_STREAM_ALGORITHMS ?? 'contrast-injection').split(',');
const WHOLE_MAX_MB = Number(process.env.BENCH_STREAM_WHOLE_MAX_MB ?? 1024);
const BUCKET = 'bench-stream';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Measure {
  ms: number;
  decodeMs: number;
  computeMs: number;
  idleRssMb: number;
  peakRssMb: number;
  output: string;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

async function measure(objects: string, algorithm: string, input: InputRef, mode: 'whole' | 'stream'): Promise<Measure> {
  const child = fileURLToPath(new URL('./stream-child.js', import.meta.url));
  const args = JSON.stringify({ objects, algorithmDir: path.join(ROOT, 'algorithms', algorithm), input, mode });
  const { stdout } = await exec(process.execPath, [child, args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Measure;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-stream-'));
  const objects = path.join(dir, 'objects');
  const store = new EmbeddedObjectStore();
  await store.start({ host: '127.0.0.1', port: 0, directory: objects, buckets: [BUCKET] });
  const s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
  const rows: Record<string, number | string>[] = [];
  try {
    for (const mb of SIZES_MB) {
      const frames = framesFor(mb);
      const file = path.join(dir, `run-${mb}.dcm`);
      const { size, sha256 } = await writeLargeRun(file, frames, 41);
      const key = `acme/cath-lab-1/bench/${sha256}.dcm`;
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: createReadStream(file), ContentLength: size }));
      await rm(file);
      const input: InputRef = { uri: `s3://${BUCKET}/${key}`, size, sha256, contentType: 'application/dicom' };
      const modes = size / 1e6 <= WHOLE_MAX_MB ? (['whole', 'stream'] as const) : (['stream'] as const);
      for (const algorithm of ALGORITHMS) {
        const runs: Record<'whole' | 'stream', Measure[]> = { whole: [], stream: [] };
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? modes : [...modes].reverse();
          for (const mode of order) runs[mode].push(await measure(objects, algorithm, input, mode));
        }
        const outputs = new Set([...runs.whole, ...runs.stream].map((m) => m.output));
        if (outputs.size !== 1) throw new Error(`${algorithm} on ${mb} MB: the two paths gave different outputs`);
        const whole = runs.whole.length > 0 ? median(runs.whole.map((m) => m.ms)) : Number.NaN;
        const streamed = median(runs.stream.map((m) => m.ms));
        const row = {
          run: `${(size / 1e6).toFixed(0)} MB, ${frames} frames`,
          algorithm,
          'whole ms': Math.round(whole),
          'stream ms': Math.round(streamed),
          'stream / whole': Number((streamed / whole).toFixed(2)),
          'stream compute ms': Math.round(median(runs.stream.map((m) => m.computeMs))),
          'idle RSS MB': Math.round(median([...runs.whole, ...runs.stream].map((m) => m.idleRssMb))),
          'whole peak RSS MB': runs.whole.length > 0 ? Math.round(Math.max(...runs.whole.map((m) => m.peakRssMb))) : Number.NaN,
          'stream peak RSS MB': Math.round(Math.max(...runs.stream.map((m) => m.peakRssMb))),
        };
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
      }
    }
    console.table(rows);
    const results = path.join(ROOT, 'bench', 'results');
    await mkdir(results, { recursive: true });
    await writeFile(path.join(results, 'stream.json'), `${JSON.stringify({ at: new Date().toISOString(), rounds: ROUNDS, rows }, null, 2)}\n`);
  } finally {
    s3.destroy();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
