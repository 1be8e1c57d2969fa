// Platform overhead (end to end minus upload minus algorithm compute) at
// 50, 200 and 500 requests/s with small inputs, against the bare MQTT round trip through
// the same broker at the same rate, measured in the same run.
// The AWS SDK is pinned to a release that supports Node 20; its notice about later releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { createS3Client } from '@arteria/engine-s3';
import { serviceToken, serviceUsername } from '@arteria/ports';
import { deviceTopic, epochNow } from '@arteria/protocol';
import { BenchDevice, type Received } from './devices.js';
import { runLoad } from './load.js';
import { fmt, summarize } from './stats.js';

const RATES = (process.env.BENCH_RATES ?? '50,200,500').split(',').map(Number);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 6000);
const DEVICES = 20;
const TENANT_SECRET = 'bench-tenant-secret-0123456789';
const PLATFORM_SECRET = 'bench-platform-secret-0123456789';
const ALGORITHM = process.env.BENCH_ALGORITHM ?? 'contrast-injection@^1';
const TARGET_P99_MS_AT_200 = 20;

const algorithmDir = process.env.BENCH_ALGORITHM_DIR ?? path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

/** The embedded platform's store key, printed by its process. */
interface StoreKey {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** The platform process's CPU time so far, in ms: all threads, and its main thread alone (where the platform itself runs). */
async function cpuMsOf(child: ChildProcess): Promise<{ all: number; main: number }> {
  const answer = new Promise<{ all: number; main: number }>((resolve) => {
    const onMessage = (message: unknown): void => {
      const { cpuMs, mainThreadCpuMs } = message as { cpuMs?: unknown; mainThreadCpuMs?: unknown };
      if (typeof cpuMs !== 'number') return;
      child.off('message', onMessage);
      resolve({ all: cpuMs, main: typeof mainThreadCpuMs === 'number' ? mainThreadCpuMs : Number.NaN });
    };
    child.on('message', onMessage);
  });
  child.send('cpu');
  return answer;
}

async function startPlatform(dataDir: string): Promise<{ child: ChildProcess; mqttUrl: string; s3Endpoint: string; storeCredentials: StoreKey }> {
  const options = { ...(process.env.BENCH_SYNC ? { queueSynchronous: process.env.BENCH_SYNC } : {}), mqttPort: 0, s3Port: 0, httpPort: 0, dataDir, workers: Number(process.env.BENCH_WORKERS ?? 8), threadsPerAlgorithm: Number(process.env.BENCH_THREADS ?? 2), tenants: { bench: TENANT_SECRET }, platformSecret: PLATFORM_SECRET, algorithmDirs: [algorithmDir] };
  const child = fork(fileURLToPath(new URL('./platform-child.js', import.meta.url)), [JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : (process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []) });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, ...(JSON.parse(line.toString()) as { mqttUrl: string; s3Endpoint: string; storeCredentials: StoreKey }) };
}

/** A platform service that echoes each device's status message to its results topic: MQTT alone, two hops. */
async function startEcho(url: string): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'arteria-bench-echo', username: serviceUsername('bench-echo'), password: serviceToken(PLATFORM_SECRET, 'bench-echo'), clean: true });
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  client.on('message', (topic, payload) => {
    client.publish(topic.replace(/\/status$/, '/results'), payload, { qos: 1 });
  });
  await client.subscribeAsync('arteria/v1/bench/+/status', { qos: 1 });
  return client;
}

function echoRequest(device: BenchDevice, index: number): Promise<Received> {
  const id = `b${index}`;
  return new Promise<Received>((resolve) => {
    const onMessage = (_topic: string, payload: Buffer): void => {
      const parsed = JSON.parse(payload.toString()) as { requestId?: string; timings: { published: number } };
      if (parsed.requestId !== id) return;
      device.client.off('message', onMessage);
      resolve({ result: { v: 1, requestId: id, tenant: device.tenant, device: device.device, status: 'ok', timings: parsed.timings }, receivedAt: epochNow() });
    };
    device.client.on('message', onMessage);
    const body = { v: 1, requestId: id, tenant: device.tenant, device: device.device, status: 'ok', timings: { published: epochNow() } };
    device.client.publish(deviceTopic(device, 'status'), JSON.stringify(body), { qos: 1 });
  });
}

const overheadOf = (r: Received): number => {
  const t = r.result.timings;
  const compute = t.computed !== undefined && t.fetched !== undefined ? t.computed - t.fetched : 0;
  return r.receivedAt - (t.published ?? r.receivedAt) - compute;
};

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-'));
  const { child, mqttUrl, s3Endpoint, storeCredentials } = await startPlatform(dataDir);
  const s3 = createS3Client({ endpoint: s3Endpoint, ...storeCredentials, forcePathStyle: true });
  const devices = await Promise.all(Array.from({ length: DEVICES }, (_, i) => BenchDevice.connect(mqttUrl, TENANT_SECRET, 'bench', `dev-${i}`)));
  const run = synthesizeXaRun({ seed: 1, rows: 32, columns: 32, frames: 8, bitsStored: 8 });
  await Promise.all(devices.map((d) => d.upload(s3, 'arteria-runs', run.bytes)));
  const echo = await startEcho(mqttUrl);

  process.stdout.write(`Arteria bench: platform overhead, ${DEVICES} devices, ${run.bytes.byteLength}-byte XA runs (32x32x8), ${ALGORITHM}, ${DURATION_MS / 1000} s per rate\n`);
  await runLoad(devices, 50, 1000, (d, i) => d.request(ALGORITHM, `1${i}`)); // warm up threads, caches, JIT

  const rows = [];
  for (const rate of RATES) {
    const echoCpu = await cpuMsOf(child);
    const baseline = await runLoad(devices, rate, DURATION_MS, echoRequest);
    const echoCpuMs = (await cpuMsOf(child)).all - echoCpu.all;
    // A second at the rate first, discarded: the table reports steady state, not the ramp.
    await runLoad(devices, rate, 1000, (d, i) => d.request(ALGORITHM, `9${rate}.${i}`));
    const platformCpu = await cpuMsOf(child);
    const platform = await runLoad(devices, rate, DURATION_MS, (d, i) => d.request(ALGORITHM, `${rate}.${i}`));
    const platformCpuEnd = await cpuMsOf(child);
    const platformCpuMs = platformCpuEnd.all - platformCpu.all;
    const mainThreadCpuMs = platformCpuEnd.main - platformCpu.main;
    const base = summarize(baseline.received.map((r) => r.receivedAt - (r.result.timings.published ?? 0)));
    const over = summarize(platform.received.map(overheadOf));
    const e2e = summarize(platform.received.map((r) => r.receivedAt - (r.result.timings.published ?? 0)));
    const compute = summarize(platform.received.map((r) => (r.result.timings.computed ?? 0) - (r.result.timings.fetched ?? 0)));
    const stage = (from: 'published' | 'enqueued' | 'leased' | 'fetched' | 'computed' | 'resultPublished', to: 'enqueued' | 'leased' | 'fetched' | 'computed' | 'resultPublished' | 'received'): { p50: number; p99: number } => {
      const { p50, p99 } = summarize(platform.received.map((r) => (to === 'received' ? r.receivedAt : (r.result.timings[to] ?? 0)) - (r.result.timings[from] ?? 0)));
      return { p50, p99 };
    };
    const stagesMs = {
      ingest: stage('published', 'enqueued'),
      queued: stage('enqueued', 'leased'),
      fetch: stage('leased', 'fetched'),
      compute: stage('fetched', 'computed'),
      publish: stage('computed', 'resultPublished'),
      deliver: stage('resultPublished', 'received'),
    };
    if (process.env.BENCH_SAMPLES_FILE) {
      const t0 = Math.min(...platform.received.map((r) => r.result.timings.published ?? Infinity));
      const samples = platform.received.map((r) => {
        const t = r.result.timings;
        return [(t.published ?? 0) - t0, overheadOf(r), (t.enqueued ?? 0) - (t.published ?? 0), (t.leased ?? 0) - (t.enqueued ?? 0), (t.fetched ?? 0) - (t.leased ?? 0), (t.computed ?? 0) - (t.fetched ?? 0), (t.resultPublished ?? 0) - (t.computed ?? 0), r.receivedAt - (t.resultPublished ?? 0)];
      });
      await writeFile(`${process.env.BENCH_SAMPLES_FILE}.${rate}.json`, JSON.stringify(samples));
    }
    rows.push({
      stagesMs,
      rate,
      achievedPerS: (platform.received.length / platform.durationMs) * 1000,
      sent: platform.sent,
      lost: platform.lost,
      failed: platform.received.filter((r) => r.result.status !== 'ok').length,
      overheadMs: over,
      e2eMs: e2e,
      computeMs: compute,
      baselineMs: base,
      ratioP50: over.p50 / base.p50,
      ratioP99: over.p99 / base.p99,
      // The platform process's CPU per request (all threads, the algorithm's included), and per echoed MQTT message.
      cpuMsPerRequest: platformCpuMs / Math.max(1, platform.received.length),
      // Its main thread's alone: ingest, queue, ledger, MQTT and HTTP, without the algorithm threads.
      mainThreadCpuMsPerRequest: mainThreadCpuMs / Math.max(1, platform.received.length),
      echoCpuMsPerMessage: echoCpuMs / Math.max(1, baseline.received.length),
    });
  }

  const header = 'rate/s  achieved/s  lost  failed  overhead p50  p99     max    | MQTT baseline p50  p99   | ratio p50  p99  | compute p50 | CPU ms/request  main thread  MQTT echo';
  process.stdout.write(`\n${header}\n${'-'.repeat(header.length)}\n`);
  for (const r of rows) {
    process.stdout.write(
      `${String(r.rate).padStart(6)}  ${r.achievedPerS.toFixed(1).padStart(10)}  ${String(r.lost).padStart(4)}  ${String(r.failed).padStart(6)}  ${fmt(r.overheadMs.p50).padStart(12)}  ${fmt(r.overheadMs.p99).padStart(6)}  ${fmt(r.overheadMs.max).padStart(6)} | ${fmt(r.baselineMs.p50).padStart(17)}  ${fmt(r.baselineMs.p99).padStart(5)} | ${r.ratioP50.toFixed(1).padStart(9)}  ${r.ratioP99.toFixed(1).padStart(4)} | ${fmt(r.computeMs.p50).padStart(11)} | ${r.cpuMsPerRequest.toFixed(2).padStart(14)}  ${r.mainThreadCpuMsPerRequest.toFixed(2).padStart(11)}  ${r.echoCpuMsPerMessage.toFixed(2).padStart(9)}\n`,
    );
  }
  process.stdout.write('\nStages p50/p99 (ms): ingest = publish to enqueued, queued = enqueued to leased, fetch, compute, publish = computed to result published, deliver = to received\n');
  for (const r of rows) process.stdout.write(`${String(r.rate).padStart(6)}/s  ${Object.entries(r.stagesMs).map(([k, v]) => `${k} ${fmt(v.p50)}/${fmt(v.p99)}`).join('  ')}\n`);
  const at200 = rows.find((r) => r.rate === 200);
  if (at200) {
    const met = at200.overheadMs.p99 <= TARGET_P99_MS_AT_200;
    process.stdout.write(`\nTarget: p99 overhead <= ${TARGET_P99_MS_AT_200} ms at 200 requests/s: ${met ? 'met' : 'NOT met'} (${fmt(at200.overheadMs.p99)} ms)\n`);
  }
  const outDir = fileURLToPath(new URL('../results/', import.meta.url));
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'overhead.json'), `${JSON.stringify({ at: new Date().toISOString(), devices: DEVICES, inputBytes: run.bytes.byteLength, algorithm: ALGORITHM, durationMs: DURATION_MS, rows }, null, 2)}\n`);
  process.stdout.write(`JSON: bench/results/overhead.json\n`);

  await echo.endAsync();
  await Promise.all(devices.map((d) => d.close()));
  s3.destroy();
  child.kill('SIGTERM');
  await once(child, 'exit');
  await rm(dataDir, { recursive: true, force: true });
}

await main();
