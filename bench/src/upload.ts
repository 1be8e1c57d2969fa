// node bench/dist/upload.js: the gateway's upload against the raw throughput of the same
// object store, measured in the same run, alternating, on the same bytes.
//   raw put        one PutObject of the run from memory, signed with the store's own key
//   raw multipart  the SDK's own multipart upload (lib-storage) from memory with the store's
//                  key, the gateway's part size and parallelism
//   gateway        a real gateway holding no store key (upload grants over MQTT, as in
//                  production) sent the run's file: from send() to the run stored as uploaded
//                  (header read, outbox, grants, parts read and hashed, journal, the stored
//                  object checked)
// The platform (broker, ingest, the embedded store in its thread) runs in a process of its
// own, as it would on another machine; the gateway's run is processed to its result before
// the next attempt starts. ratio = gateway / the better raw.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Gateway, createS3Client } from '@arteria/gateway';
import { deviceToken } from '@arteria/protocol';
import { framesFor, writeLargeRun } from './stream-run.js';

const SIZES_MB = (process.env.BENCH_UPLOAD_SIZES_MB ?? '105,419').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_UPLOAD_ROUNDS ?? 3);
const PART_BYTES = Number(process.env.BENCH_UPLOAD_PART_MIB ?? 8) * 1024 * 1024;
const CONCURRENCY = Number(process.env.BENCH_UPLOAD_CONCURRENCY ?? 4);
const TENANT_SECRET = 'bench-tenant-secret-0123456789';
const BUCKET = 'arteria-runs';
const ALGORITHM = 'contrast-injection@^1';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

interface Platform {
  child: ChildProcess;
  mqttUrl: string;
  s3Endpoint: string;
  storeCredentials: { accessKeyId: string; secretAccessKey: string; region: string };
}

async function startPlatform(dataDir: string): Promise<Platform> {
  const options = { mqttPort: 0, s3Port: 0, httpPort: 0, dataDir, workers: 1, tenants: { bench: TENANT_SECRET }, algorithmDirs: [algorithmDir] };
  const execArgv = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const child = fork(fileURLToPath(new URL('./platform-child.js', import.meta.url)), [JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, ...(JSON.parse(line.toString()) as Omit<Platform, 'child'>) };
}

/** Sends `file` and resolves with the milliseconds from send() to the run stored as uploaded, once its result is in. */
async function gatewayUpload(gateway: Gateway, file: string): Promise<{ ms: number; key: undefined }> {
  const started = performance.now();
  let uploadedMs: number | undefined;
  const onEntry = (event: { state: string }): void => {
    if (event.state === 'uploaded' && uploadedMs === undefined) uploadedMs = performance.now() - started;
  };
  const unsubscribe = gateway.on('entry', onEntry);
  try {
    const result = await gateway.send(file, { algorithm: ALGORITHM });
    if (uploadedMs === undefined) throw new Error('the run was answered without being uploaded');
    if (result.status !== 'ok') throw new Error(`the run's result is ${result.status}`);
    return { ms: uploadedMs, key: undefined };
  } finally {
    unsubscribe();
  }
}

/** Removes the object `key`, or every object under the prefix `key/`. */
async function removeObjects(s3: S3Client, key: string): Promise<void> {
  const keys = key.endsWith('/') ? ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }))).Contents ?? []).map((o) => o.Key ?? '') : [key];
  for (const Key of keys) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-upload-'));
  const platform = await startPlatform(path.join(dir, 'platform'));
  const s3: S3Client = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials });
  const device = 'uploader';
  const gateway = new Gateway({
    tenant: 'bench',
    device,
    token: deviceToken(TENANT_SECRET, { tenant: 'bench', device }),
    mqttUrl: platform.mqttUrl,
    // No store key: the gateway asks the platform for upload grants, as in production.
    s3: { endpoint: platform.s3Endpoint, region: platform.storeCredentials.region, bucket: BUCKET },
    outboxPath: path.join(dir, 'gateway', 'outbox.sqlite'),
    algorithm: ALGORITHM,
    partSizeBytes: PART_BYTES,
    uploadConcurrency: CONCURRENCY,
    // The run's own bytes are uploaded, as the raw contenders upload them (de-identification and compression have their own figures).
    deidentification: { enabled: false },
    segmentEncoding: 'none',
    // Every round sends the same file again, to be uploaded and computed again: never answered from the outbox.
    answerAgainWithinMs: 0,
  });
  const rows: Record<string, number>[] = [];
  try {
    await gateway.start();
    for (const mb of SIZES_MB) {
      const file = path.join(dir, `run-${mb}.dcm`);
      const { size } = await writeLargeRun(file, framesFor(mb), mb);
      const bytes = await readFile(file);
      const rates: Record<'put' | 'multipart' | 'gateway', number[]> = { put: [], multipart: [], gateway: [] };
      const mbps = (ms: number): number => size / 1e6 / (ms / 1000);
      const timed = async (key: string, send: () => Promise<unknown>): Promise<{ ms: number; key: string }> => {
        const started = performance.now();
        await send();
        return { ms: performance.now() - started, key };
      };
      const attempts: Record<keyof typeof rates, (round: number) => Promise<{ ms: number; key: string | undefined }>> = {
        put: (round) => timed(`raw/put-${mb}-${round}`, () => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `raw/put-${mb}-${round}`, Body: bytes }))),
        multipart: (round) =>
          timed(`raw/mp-${mb}-${round}`, () => new Upload({ client: s3, params: { Bucket: BUCKET, Key: `raw/mp-${mb}-${round}`, Body: bytes }, partSize: PART_BYTES, queueSize: CONCURRENCY }).done()),
        gateway: () => gatewayUpload(gateway, file),
      };
      // BENCH_UPLOAD_ONLY=gateway (for a profile of one contender); ratios need all three.
      const only = process.env.BENCH_UPLOAD_ONLY?.split(',');
      const order = (['put', 'multipart', 'gateway'] as const).filter((name) => only === undefined || only.includes(name));
      for (let round = 0; round < ROUNDS; round += 1) {
        // Each round starts with another contender, so none always pays for the disk flushing the previous one's bytes.
        for (let i = 0; i < order.length; i += 1) {
          const name = order[(round + i) % order.length] ?? 'put';
          const { ms, key } = await attempts[name](round);
          rates[name].push(mbps(ms));
          await removeObjects(s3, key ?? `bench/${device}/`); // keeps the disk from filling up
        }
      }
      const put = median(rates.put);
      const multipart = median(rates.multipart);
      const gatewayRate = median(rates.gateway);
      rows.push({ sizeMB: Math.round(size / 1e6), rounds: ROUNDS, rawPutMBps: put, rawMultipartMBps: multipart, gatewayMBps: gatewayRate, ratio: gatewayRate / Math.max(put, multipart), ratioToMultipart: gatewayRate / multipart });
      process.stderr.write(`${mb} MB rounds (MB/s): ${JSON.stringify(Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, v.map((x) => Number(x.toFixed(1)))])))}\n`);
      await rm(file, { force: true });
    }
  } finally {
    await gateway.close();
    s3.destroy();
    platform.child.kill('SIGTERM');
    await once(platform.child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`parts of ${PART_BYTES / 2 ** 20} MiB, ${CONCURRENCY} in parallel; medians of ${ROUNDS} alternating rounds (MB/s)\n`);
  process.stdout.write('| run MB | raw put | raw multipart | gateway (grants) | gateway / best raw | gateway / raw multipart |\n|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    const f = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(1));
    const ratio = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(2));
    process.stdout.write(`| ${r.sizeMB} | ${f(r.rawPutMBps)} | ${f(r.rawMultipartMBps)} | ${f(r.gatewayMBps)} | ${ratio(r.ratio)} | ${ratio(r.ratioToMultipart)} |\n`);
  }
  const results = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');
  await mkdir(results, { recursive: true });
  await writeFile(path.join(results, 'upload.json'), `${JSON.stringify({ at: new Date().toISOString(), partBytes: PART_BYTES, concurrency: CONCURRENCY, rows }, null, 2)}\n`);
}

await main();
