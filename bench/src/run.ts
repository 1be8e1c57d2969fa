// npm run bench: every Arteria benchmark in turn, each in a fresh process so none inherits
// another's warm caches or leftover load. Each prints its own table with ratios against a
// baseline measured in the same run, and writes JSON under bench/results/.
// BENCH_ONLY=overhead,inference picks some.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const BENCHES = [
  { name: 'overhead', what: 'platform overhead at 50, 200, 500 requests/s vs the bare MQTT round trip' },
  { name: 'inference', what: 'frames/s through the platform vs a raw ONNX Runtime session; one 60-frame 512x512 run' },
  { name: 'queue-engines', what: 'work-queue round trip: SQLite vs NATS JetStream' },
  { name: 'scale-out', what: 'throughput at p99 overhead <= 50 ms: embedded vs 1, 2, 4 worker processes' },
  { name: 'upload', what: 'gateway upload throughput vs the raw throughput of the same store (105 and 419 MB runs)' },
  { name: 'segmented', what: 'runs sent while acquired (15 fps): last frame → result, peak RSS of gateway and platform, against the whole file sent once acquired (105 and 419 MB, both algorithms)' },
  { name: 'link', what: 'whole-file runs over a 1 Gb/s link shaped with a network namespace and tc: send → result against the wire time, one plain TCP connection and a raw PutObject over the same link' },
  { name: 'fold', what: 'the algorithms\' incremental fold of a 419 MB 1024x1024 8-bit run in 16 MiB segments, in process: MB per CPU second against a 1 Gb/s link, the model\'s share' },
  { name: 'stream', what: 'streaming worker vs the whole-file path: read to result and peak RSS on a large run (105 MB; BENCH_STREAM_SIZES_MB for more)' },
] as const;

const only = process.env.BENCH_ONLY?.split(',');
let failed = 0;
for (const bench of BENCHES) {
  if (only && !only.includes(bench.name)) continue;
  process.stdout.write(`\n=== ${bench.name}: ${bench.what}\n`);
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${bench.name}.js`, import.meta.url))], { stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) {
    failed += 1;
    process.stdout.write(`${bench.name} exited with ${code}\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
