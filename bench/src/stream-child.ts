// One measurement of bench/src/stream.ts in a fresh process, so its peak RSS is its own:
// the worker's path from reading an input to the algorithm's output, either the whole-file
// way (read and hash the input into memory, then decode and compute) or streamed.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { InputRef } from '@arteria/protocol';
import { AlgorithmRegistry, AlgorithmRunner, onnxRuntimeModuleUrl } from '@arteria/worker';
import { LocalStoreInputSource } from '@arteria/engine-s3';

interface ChildArgs {
  objects: string;
  algorithmDir: string;
  input: InputRef;
  mode: 'whole' | 'stream';
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const [algorithm] = (await AlgorithmRegistry.load([args.algorithmDir])).list();
if (algorithm === undefined) throw new Error(`no algorithm in ${args.algorithmDir}`);
const runner = new AlgorithmRunner({ inferenceModule: onnxRuntimeModuleUrl() });
await runner.warm(algorithm);
const source = new LocalStoreInputSource(args.objects);
const limit = { maxBytes: 8e9 };
const idleRss = process.memoryUsage().rss;

const started = performance.now();
const result =
  args.mode === 'whole'
    ? await runner.run(algorithm, await source.fetch(args.input, limit))
    : await runner.run(algorithm, { chunks: source.stream(args.input, limit), size: args.input.size });
const ms = performance.now() - started;
// maxRSS: the process's high-water mark in KiB, all threads included.
const peakRss = process.resourceUsage().maxRSS * 1024;
await runner.close();
process.stdout.write(
  `${JSON.stringify({
    ms,
    decodeMs: result.decodeMs,
    computeMs: result.computeMs,
    idleRssMb: idleRss / 2 ** 20,
    peakRssMb: peakRss / 2 ** 20,
    output: createHash('sha256').update(JSON.stringify(result.output)).digest('hex').slice(0, 16),
  })}\n`,
);
