// Whole-file runs over a 1 Gb/s link shaped on this machine (sent as the gateway sends
// them by default: these sizes in segments, the platform computing while they upload;
// with BENCH_LINK_ONE_SHOT also by the one-shot protocol): the platform (its own
// process) inside a network namespace joined to the host by a veth pair that tc holds to
// BENCH_LINK_RATE both ways (bench/link/shape.sh), the gateway (its own process) outside,
// so the run's bytes cross the link as from a hospital. Per row, in the same run and over
// the same link: the link TCP time, the run's bytes pushed through one plain TCP connection
// to a sink in the namespace that only counts them (tcp-sink.ts), timed until it has every
// byte, which is what the link itself carries; raw PutObject of the run with the store's
// key (the store's baseline over the link); then the gateway's send → result and its excess
// over each, the wire time (size / rate) and the target: end to end ≤ wire time + 1 s.
// The link TCP time is the floor, not the wire time: tc's token bucket counts each packet's
// Ethernet/IP/TCP headers (about 66 bytes per 1448-byte segment), so no transfer reaches
// the nominal rate; framing % is how far the link TCP time lies above the wire time.
// Skips with a message where namespaces, veth or tc are unavailable.
//   BENCH_LINK_SIZES_MB   105,419
//   BENCH_LINK_RATE       1gbit (tc's notation)
//   BENCH_LINK_ROUNDS     2
//   BENCH_LINK_ALGORITHMS contrast-injection,balloon-inflation
//   BENCH_LINK_DEBUG      set: prints each run's stage timings (ms after send), when each of
//                         its segments or parts was stored and when its upload ended (ms
//                         after send), and the platform's busiest threads in it
//                         (thread id(name): CPU ms)
// Each row also gives the CPU seconds the platform's and the gateway's processes used per
// run sent in segments, and the platform's per one-shot run (from /proc), which hold where
// the machine's load moves wall times.
//   BENCH_LINK_SEGMENT_MB the first gateway's wholeFileSegmentBytes in MiB (default: the gateway's, 16)
//   BENCH_LINK_ONE_SHOT   1: also each round through a second gateway that sends every
//                         whole file by the one-shot protocol (segmentWholeFilesOverBytes 0);
//                         the first keeps its default and sends these runs in segments
//   BENCH_LINK_ENCODING   br or auto: also each round through a gateway with that
//                         segmentEncoding; the row gives its send → result and the bytes
//                         each gateway put on the link (the host end's transmit counter)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '@arteria/engine-s3';
import { SegmentEncodingSetting } from '@arteria/protocol';
import { specOf, startGatewayProcess, startPlatformProcess, startTcpSink, type GatewayProcess, type PlatformProcess, type TcpSink } from './bench-processes.js';
import { framesFor, writeLargeRun } from './stream-run.js';
import { processCpuMs, threadCpuMs, topThreads } from './proc-cpu.js';

const exec = promisify(execFile);
const SIZES_MB = (process.env.BENCH_LINK_SIZES_MB ?? '105,419').split(',').map(Number);
const RATE = process.env.BENCH_LINK_RATE ?? '1gbit';
const ROUNDS = Number(process.env.BENCH_LINK_ROUNDS ?? 2);
const ALGORITHMS = (process.env.BENCH_LINK_ALGORITHMS ?? 'contrast-injection,balloon-inflation').split(',');
const ONE_SHOT = process.env.BENCH_LINK_ONE_SHOT !== '0';
const ENCODING = SegmentEncodingSetting.exclude(['none']).optional().catch(undefined).parse(process.env.BENCH_LINK_ENCODING);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHAPE = path.join(ROOT, 'bench', 'link', 'shape.sh');
const NETNS = 'arteria-bench';
/** The host end of the link's veth pair (shape.sh names it after the namespace). */
const HOST_IF = `${NETNS.slice(0, 10)}-h`;
const TENANT_SECRET = 'bench-tenant-secret-0123456789';

const BUCKET = 'arteria-runs';

/** Bits per second of a tc rate ("1gbit", "100mbit"). */
function bitsPerSecond(rate: string): number {
  const match = /^(\d+(?:\.\d+)?)(k|m|g)?bit$/i.exec(rate);
  if (match === null) throw new Error(`BENCH_LINK_RATE ${rate}: use tc's notation, e.g. 1gbit`);
  return Number(match[1]) * { k: 1e3, m: 1e6, g: 1e9 }[(match[2]?.toLowerCase() ?? '') as 'k' | 'm' | 'g'] || Number(match[1]);
}

/** Ms to push `file`'s `size` bytes through one TCP connection to the sink at `host:port`, until it answers that it has them all. */
async function linkTcpMs(host: string, port: number, file: string, size: number): Promise<number> {
  const started = performance.now();
  const socket = connect({ host, port });
  try {
    await once(socket, 'connect');
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(size));
    socket.write(length);
    // Not ended: the socket stays open for the sink's answer.
    createReadStream(file).pipe(socket, { end: false });
    await once(socket, 'data');
    return performance.now() - started;
  } finally {
    socket.destroy();
  }
}

/** Bytes the host end of the link has sent so far (headers included): what the gateway's side put on the wire. */
const linkTxBytes = (): number => Number(readFileSync(`/sys/class/net/${HOST_IF}/statistics/tx_bytes`, 'utf8'));

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  try {
    await exec(SHAPE, ['check']);
  } catch (err) {
    process.stdout.write(`link: skipped, no shaped link on this machine (${((err as { stderr?: string }).stderr ?? String(err)).trim()}); it needs root, ip netns, veth and tc\n`);
    return;
  }
  const bps = bitsPerSecond(RATE);
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-link-'));
  const cleanUp = (): void => void exec(SHAPE, ['down', NETNS]);
  process.once('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  const rows: Record<string, number | string>[] = [];
  let platform: PlatformProcess | undefined;
  let gateway: GatewayProcess | undefined;
  let oneShot: GatewayProcess | undefined;
  let encoded: GatewayProcess | undefined;
  let sink: TcpSink | undefined;
  try {
    const { stdout } = await exec(SHAPE, ['up', NETNS, RATE]);
    const [, nsAddr] = stdout.trim().split(' ');
    platform = await startPlatformProcess({ host: nsAddr, mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), workers: 2, tenants: { bench: TENANT_SECRET }, algorithmDirs: ALGORITHMS.map((a) => path.join(ROOT, 'algorithms', a)) }, NETNS);
    // The embedded broker names its loopback address; from outside the namespace it is the namespace's.
    const mqttUrl = platform.mqttUrl.replace('127.0.0.1', nsAddr ?? '');
    const gatewayOptions = { mqttUrl, s3Endpoint: platform.s3Endpoint, region: platform.storeCredentials.region, dir: path.join(dir, 'gateway'), tenant: 'bench', tenantSecret: TENANT_SECRET };
    const segmentMb = Number(process.env.BENCH_LINK_SEGMENT_MB ?? 0);
    gateway = await startGatewayProcess({ ...gatewayOptions, ...(segmentMb > 0 ? { wholeFileSegmentBytes: Math.round(segmentMb * 1024 * 1024) } : {}) });
    if (ONE_SHOT) oneShot = await startGatewayProcess({ ...gatewayOptions, device: 'bench-gateway-one-shot', segmentWholeFilesOverBytes: 0 });
    if (ENCODING !== undefined) encoded = await startGatewayProcess({ ...gatewayOptions, device: `bench-gateway-${ENCODING}`, segmentEncoding: ENCODING, ...(segmentMb > 0 ? { wholeFileSegmentBytes: Math.round(segmentMb * 1024 * 1024) } : {}) });
    sink = await startTcpSink(nsAddr ?? '', NETNS);
    const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
    for (const mb of SIZES_MB) {
      const file = path.join(dir, `run-${mb}.dcm`);
      const { size } = await writeLargeRun(file, framesFor(mb), 47);
      const wireMs = (size * 8 * 1000) / bps;
      for (const algorithm of ALGORITHMS) {
        const tcp: number[] = [];
        const raw: number[] = [];
        const sent: number[] = [];
        const whole: number[] = [];
        const loads: number[] = [];
        const platformCpu: number[] = [];
        const gatewayCpu: number[] = [];
        const oneShotCpu: number[] = [];
        const linkBytes: number[] = [];
        const encodedSent: number[] = [];
        const encodedBytes: number[] = [];
        const encodedCpu: { platform: number[]; gateway: number[] } = { platform: [], gateway: [] };
        for (let round = 0; round < ROUNDS; round++) {
          tcp.push(await linkTcpMs(nsAddr ?? '', sink.port, file, size));
          const key = `raw/link-${mb}-${round}`;
          const started = performance.now();
          await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: createReadStream(file), ContentLength: size }));
          raw.push(performance.now() - started);
          await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
          const cpuBefore = { platform: processCpuMs(platform.child.pid), gateway: processCpuMs(gateway.pid), threads: threadCpuMs(platform.child.pid) };
          const txBefore = linkTxBytes();
          const answer = await gateway.run({ kind: 'whole', file, algorithm: specOf(algorithm) });
          linkBytes.push(linkTxBytes() - txBefore);
          if (answer.status !== 'ok') throw new Error(`${algorithm} on ${mb} MB: ${answer.status} ${answer.error ?? ''}`);
          sent.push(answer.resultAt - answer.startAt);
          platformCpu.push(processCpuMs(platform.child.pid) - cpuBefore.platform);
          gatewayCpu.push(processCpuMs(gateway.pid) - cpuBefore.gateway);
          if (process.env.BENCH_LINK_DEBUG) {
            process.stdout.write(`${JSON.stringify(Object.fromEntries(Object.entries(answer.timings ?? {}).map(([k, v]) => [k, Math.round(v - answer.startAt)])))}\n`);
            process.stdout.write(`segments stored (ms after send): ${(answer.storedAt ?? []).map((t) => t - answer.startAt).join(' ')}; uploaded ${(answer.uploadedAt ?? Number.NaN) - answer.startAt}\n`);
            process.stdout.write(`platform threads (tid:ms): ${topThreads(cpuBefore.threads, threadCpuMs(platform.child.pid), 8, platform.child.pid)}\n`);
          }
          if (encoded !== undefined) {
            const before = { platform: processCpuMs(platform.child.pid), gateway: processCpuMs(encoded.pid), tx: linkTxBytes() };
            const sentEncoded = await encoded.run({ kind: 'whole', file, algorithm: specOf(algorithm) });
            if (sentEncoded.status !== 'ok') throw new Error(`${algorithm} on ${mb} MB, segments ${ENCODING}: ${sentEncoded.status} ${sentEncoded.error ?? ''}`);
            encodedSent.push(sentEncoded.resultAt - sentEncoded.startAt);
            encodedBytes.push(linkTxBytes() - before.tx);
            encodedCpu.platform.push(processCpuMs(platform.child.pid) - before.platform);
            encodedCpu.gateway.push(processCpuMs(encoded.pid) - before.gateway);
          }
          if (oneShot !== undefined) {
            const oneBefore = { platform: processCpuMs(platform.child.pid), threads: threadCpuMs(platform.child.pid) };
            const one = await oneShot.run({ kind: 'whole', file, algorithm: specOf(algorithm) });
            oneShotCpu.push(processCpuMs(platform.child.pid) - oneBefore.platform);
            if (process.env.BENCH_LINK_DEBUG) process.stdout.write(`one-shot platform threads (tid:ms): ${topThreads(oneBefore.threads, threadCpuMs(platform.child.pid), 8, platform.child.pid)}\n`);
            if (one.status !== 'ok') throw new Error(`${algorithm} on ${mb} MB, one-shot: ${one.status} ${one.error ?? ''}`);
            whole.push(one.resultAt - one.startAt);
            if (process.env.BENCH_LINK_DEBUG) process.stdout.write(`one-shot parts stored (ms after send): ${(one.storedAt ?? []).map((t) => t - one.startAt).join(' ')}; uploaded ${(one.uploadedAt ?? Number.NaN) - one.startAt}\n`);
            if (process.env.BENCH_LINK_DEBUG) process.stdout.write(`one-shot ${JSON.stringify(Object.fromEntries(Object.entries(one.timings ?? {}).map(([k, v]) => [k, Math.round(v - one.startAt)])))}\n`);
          }
          loads.push(loadavg()[0] ?? Number.NaN);
        }
        const endToEnd = median(sent);
        const linkTcp = median(tcp);
        const row = {
          run: `${(size / 1e6).toFixed(0)} MB`,
          algorithm,
          'wire ms': Math.round(wireMs),
          'link TCP ms': Math.round(linkTcp),
          'framing %': Number(((linkTcp / wireMs - 1) * 100).toFixed(1)),
          'raw put ms': Math.round(median(raw)),
          'send → result ms': Math.round(endToEnd),
          'over wire ms': Math.round(endToEnd - wireMs),
          'over link TCP ms': Math.round(endToEnd - linkTcp),
          'over raw put ms': Math.round(endToEnd - median(raw)),
          'target ≤ wire + 1 s': endToEnd <= wireMs + 1000 ? 'met' : 'missed',
          'link MB': Number((median(linkBytes) / 1e6).toFixed(1)),
          ...(encodedSent.length > 0
            ? {
                [`${ENCODING} send → result ms`]: Math.round(median(encodedSent)),
                [`${ENCODING} over wire ms`]: Math.round(median(encodedSent) - wireMs),
                [`${ENCODING} link MB`]: Number((median(encodedBytes) / 1e6).toFixed(1)),
                [`${ENCODING} rounds ms`]: encodedSent.map(Math.round).join(', '),
                [`${ENCODING} platform / gateway CPU s`]: encodedCpu.platform.map((ms, i) => `${(ms / 1000).toFixed(2)} / ${((encodedCpu.gateway[i] ?? 0) / 1000).toFixed(2)}`).join(', '),
              }
            : {}),
          ...(whole.length > 0 ? { 'one-shot send → result ms': Math.round(median(whole)), 'one-shot over wire ms': Math.round(median(whole) - wireMs) } : {}),
          'rounds ms': sent.map(Math.round).join(', '),
          'platform CPU s': platformCpu.map((ms) => (ms / 1000).toFixed(2)).join(', '),
          'gateway CPU s': gatewayCpu.map((ms) => (ms / 1000).toFixed(2)).join(', '),
          ...(oneShotCpu.length > 0 ? { 'one-shot platform CPU s': oneShotCpu.map((ms) => (ms / 1000).toFixed(2)).join(', ') } : {}),
          'load (1 min)': loads.map((l) => l.toFixed(1)).join(', '),
        };
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
      }
      await rm(file, { force: true });
    }
    s3.destroy();
    console.table(rows);
    const results = path.join(ROOT, 'bench', 'results');
    await mkdir(results, { recursive: true });
    await writeFile(path.join(results, 'link.json'), `${JSON.stringify({ at: new Date().toISOString(), rate: RATE, rounds: ROUNDS, encoding: ENCODING ?? 'none', rows }, null, 2)}\n`);
  } finally {
    await gateway?.stop();
    await oneShot?.stop();
    await encoded?.stop();
    await platform?.stop();
    await sink?.stop();
    await exec(SHAPE, ['down', NETNS]);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
