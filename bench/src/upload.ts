// node bench/dist/upload.js: the gateway's upload path against the raw throughput of the
// same object store, measured in the same run, alternating, on the same bytes.
//   raw put        one PutObject of the run from memory (the SDK, no hashing, no journal)
//   raw multipart  the SDK's own multipart upload (lib-storage) from memory, same part size
//                  and parallelism as the gateway
//   gateway        the gateway's resumable upload from the run's file: reads each part,
//                  SHA-256 over every byte, the outbox journal committed (fsync) per part,
//                  parts in parallel, the completed object checked
// ratio = gateway / the better raw. The store is the embedded one (s3rver in its own
// thread, on this machine's disk), so "the store's speed" is that of this machine.
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EMBEDDED_S3_CREDENTIALS, EmbeddedObjectStore } from '@arteria/platform';
import { Outbox, createS3Client, s3PartStore, uploadToStore } from '@arteria/gateway';

const SIZES_MB = (process.env.BENCH_UPLOAD_SIZES_MB ?? '105,419').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_UPLOAD_ROUNDS ?? 3);
const PART_BYTES = 8 * 1024 * 1024;
const CONCURRENCY = Number(process.env.BENCH_UPLOAD_CONCURRENCY ?? 4);
const BUCKET = 'bench-upload';

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-upload-'));
  const store = new EmbeddedObjectStore();
  await store.start({ host: '127.0.0.1', port: 0, directory: path.join(dir, 'objects'), buckets: [BUCKET] });
  const s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS });
  const outbox = Outbox.open(path.join(dir, 'gateway', 'outbox.sqlite'), { maxEntries: 10, keepFinishedEntries: 10 });
  const rows: Record<string, number | string>[] = [];
  try {
    for (const mb of SIZES_MB) {
      const bytes = Buffer.allocUnsafe(Math.round(mb * 1e6));
      randomFillSync(bytes);
      const file = path.join(dir, `run-${mb}.dcm`);
      await writeFile(file, bytes);
      const rates: Record<'put' | 'multipart' | 'gateway', number[]> = { put: [], multipart: [], gateway: [] };
      const mbps = (ms: number): number => bytes.length / 1e6 / (ms / 1000);
      const attempts: Record<keyof typeof rates, (round: number) => Promise<unknown>> = {
        put: (round) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `raw/put-${mb}-${round}`, Body: bytes })),
        multipart: (round) => new Upload({ client: s3, params: { Bucket: BUCKET, Key: `raw/mp-${mb}-${round}`, Body: bytes }, partSize: PART_BYTES, queueSize: CONCURRENCY }).done(),
        gateway: async (round) => {
          const entryId = `bench-${mb}-${round}`;
          await uploadToStore(s3PartStore(s3, BUCKET), { bucket: BUCKET, key: `acme/bench/1.2.3/${entryId}.dcm`, source: file }, {
            journal: outbox.uploads,
            entryId,
            partSizeBytes: PART_BYTES,
            concurrency: CONCURRENCY,
          });
          outbox.uploads.forget(entryId);
        },
      };
      const order = ['put', 'multipart', 'gateway'] as const;
      for (let round = 0; round < ROUNDS; round += 1) {
        // Each round starts with another contender, so none always pays for the disk flushing the previous one's bytes.
        for (let i = 0; i < order.length; i += 1) {
          const name = order[(round + i) % order.length] ?? 'put';
          const started = performance.now();
          await attempts[name](round);
          rates[name].push(mbps(performance.now() - started));
        }
      }
      const put = median(rates.put);
      const multipart = median(rates.multipart);
      const gateway = median(rates.gateway);
      const raw = Math.max(put, multipart);
      rows.push({ sizeMB: mb, rounds: ROUNDS, rawPutMBps: put, rawMultipartMBps: multipart, gatewayMBps: gateway, ratio: gateway / raw, ratioToMultipart: gateway / multipart });
      await rm(file, { force: true });
    }
  } finally {
    outbox.close();
    s3.destroy();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`parts of ${PART_BYTES / 2 ** 20} MiB, ${CONCURRENCY} in parallel; medians of ${ROUNDS} alternating rounds (MB/s)\n`);
  process.stdout.write('| run MB | raw put | raw multipart | gateway | gateway / best raw | gateway / raw multipart |\n|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    const f = (v: number | string | undefined): string => (typeof v === 'number' ? v.toFixed(1) : String(v));
    const ratio = (v: number | string | undefined): string => (typeof v === 'number' ? v.toFixed(2) : '-');
    process.stdout.write(`| ${r.sizeMB} | ${f(r.rawPutMBps)} | ${f(r.rawMultipartMBps)} | ${f(r.gatewayMBps)} | ${ratio(r.ratio)} | ${ratio(r.ratioToMultipart)} |\n`);
  }
  const results = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'results');
  await mkdir(results, { recursive: true });
  await writeFile(path.join(results, 'upload.json'), `${JSON.stringify({ at: new Date().toISOString(), partBytes: PART_BYTES, concurrency: CONCURRENCY, rows }, null, 2)}\n`);
}

await main();
