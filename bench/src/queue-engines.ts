// node bench/dist/queue-engines.js: the work queue's enqueue -> lease -> ack path on the
// NATS JetStream and SQS adapters against the SQLite adapter, measured in the same run on
// the same machine, printed as ratios. Starts its own nats-server (apt) with JetStream on a
// free port and a temp store, never the machine's own, and an SQS-API server (local-aws-sqs,
// in memory) in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { NatsWorkQueue } from '@arteria/engine-nats';
import { SqliteWorkQueue } from '@arteria/engine-sqlite';
import { SqsWorkQueue } from '@arteria/engine-sqs';
import { type WorkQueue } from '@arteria/ports';
import { fmt, summarize, type Summary } from './stats.js';
import { TestSqsServer, freePort } from '@arteria/testing';

const TASKS = Number(process.env.BENCH_QUEUE_TASKS ?? 2000);
const LATENCY_SAMPLES = Number(process.env.BENCH_QUEUE_SAMPLES ?? 300);
const ROUNDS = Number(process.env.BENCH_QUEUE_ROUNDS ?? 3);
const PRODUCERS = 4;
const CONSUMERS = 4;
const VISIBILITY_MS = 30_000;
const PAYLOAD = Buffer.alloc(512, 7);

interface EngineResult {
  name: string;
  tasksPerS: number;
  /** Enqueue start to the waiting leaser holding the task. */
  toLease: Summary;
  /** Enqueue start to ack done. */
  roundTrip: Summary;
}

/** Producers enqueue `tasks` while consumers lease (up to 16) and ack; tasks/s over the whole run. */
async function throughput(queue: WorkQueue, tag: string, tasks: number): Promise<number> {
  let produced = 0;
  let acked = 0;
  const started = performance.now();
  const producer = async (): Promise<void> => {
    while (produced < tasks) {
      const i = produced++;
      await queue.enqueue(PAYLOAD, { dedupeId: `${tag}-${i}` });
    }
  };
  const consumer = async (): Promise<void> => {
    while (acked < tasks) {
      const leases = await queue.lease({ max: 16, visibilityMs: VISIBILITY_MS, waitMs: 100 });
      await Promise.all(leases.map((lease) => queue.ack(lease)));
      acked += leases.length;
    }
  };
  await Promise.all([...Array.from({ length: PRODUCERS }, producer), ...Array.from({ length: CONSUMERS }, consumer)]);
  return tasks / ((performance.now() - started) / 1000);
}

/** One task at a time through an idle queue with a leaser already waiting. */
async function latency(queue: WorkQueue, tag: string): Promise<{ toLease: Summary; roundTrip: Summary }> {
  const toLease: number[] = [];
  const roundTrip: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const waiting = queue.lease({ max: 1, visibilityMs: VISIBILITY_MS, waitMs: 5_000 });
    await sleep(1); // let the leaser start waiting
    const t0 = performance.now();
    await queue.enqueue(PAYLOAD, { dedupeId: `${tag}-lat-${i}` });
    const [lease] = await waiting;
    if (!lease) throw new Error('no task leased within 5 s');
    const t1 = performance.now();
    await queue.ack(lease);
    toLease.push(t1 - t0);
    roundTrip.push(performance.now() - t0);
  }
  return { toLease: summarize(toLease), roundTrip: summarize(roundTrip) };
}

async function measure(name: string, queue: WorkQueue): Promise<EngineResult> {
  try {
    await throughput(queue, 'warmup', Math.ceil(TASKS / 4));
    const tasksPerS = await throughput(queue, 'run', TASKS);
    return { name, tasksPerS, ...(await latency(queue, 'run')) };
  } finally {
    await queue.close();
  }
}

async function startNats(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const bin = process.env.ARTERIA_NATS_SERVER ?? '/usr/sbin/nats-server';
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', path.join(dir, 'nats')], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ port, host: '127.0.0.1' });
      socket.once('connect', () => resolve(socket.destroy() !== undefined));
      socket.once('error', () => resolve(false));
    });
    if (up) return { url: `nats://127.0.0.1:${port}`, child };
    await sleep(25);
  }
  child.kill('SIGKILL');
  throw new Error(`${bin} did not start`);
}

function row(r: EngineResult): string {
  return [
    r.name.padEnd(24),
    r.tasksPerS.toFixed(0).padStart(8),
    fmt(r.toLease.p50).padStart(10),
    fmt(r.toLease.p99).padStart(10),
    fmt(r.roundTrip.p50).padStart(10),
    fmt(r.roundTrip.p99).padStart(10),
  ].join(' ');
}

/** Median of each figure over the rounds: one noisy round (a busy disk, a busy core) does not decide. */
function median(results: EngineResult[]): EngineResult {
  const mid = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  const pick = (get: (r: EngineResult) => Summary): Summary => ({
    count: get(results[0]!).count,
    p50: mid(results.map((r) => get(r).p50)),
    p99: mid(results.map((r) => get(r).p99)),
    max: mid(results.map((r) => get(r).max)),
  });
  return {
    name: results[0]!.name,
    tasksPerS: mid(results.map((r) => r.tasksPerS)),
    toLease: pick((r) => r.toLease),
    roundTrip: pick((r) => r.roundTrip),
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-bench-queues-'));
  const nats = await startNats(dir);
  const sqsServer = await TestSqsServer.start();
  const engines = {
    sqs: [] as EngineResult[],
    full: [] as EngineResult[],
    normal: [] as EngineResult[],
    jetstream: [] as EngineResult[],
  };
  try {
    // Rounds interleave the engines, so a slow spell of the machine hits each of them.
    for (let round = 1; round <= ROUNDS; round++) {
      const file = (name: string): string => path.join(dir, `${name}-${round}.db`);
      engines.full.push(await measure('sqlite (FULL)', new SqliteWorkQueue({ path: file('full'), maxDeliveries: 5 })));
      engines.normal.push(await measure('sqlite (NORMAL)', new SqliteWorkQueue({ path: file('normal'), maxDeliveries: 5, synchronous: 'NORMAL' })));
      engines.jetstream.push(
        await measure('nats-jetstream (file)', await NatsWorkQueue.open({ servers: nats.url, name: `BENCH${round}`, maxDeliveries: 5 })),
      );
      engines.sqs.push(
        await measure('sqs (local-aws-sqs)', await SqsWorkQueue.open({ ...sqsServer.clientOptions, name: `bench${round}`, maxDeliveries: 5, recordsPath: file('sqs-records') })),
      );
    }
    const [sqlite, normal, jetstream, sqs] = [median(engines.full), median(engines.normal), median(engines.jetstream), median(engines.sqs)];
    console.log(
      `queue engines: ${TASKS} tasks (${PRODUCERS} producers, ${CONSUMERS} consumers), ${LATENCY_SAMPLES} latency samples, ` +
        `512-byte payloads; median of ${ROUNDS} rounds`,
    );
    console.log(`${'engine'.padEnd(24)} ${'tasks/s'.padStart(8)} ${'lease p50'.padStart(10)} ${'lease p99'.padStart(10)} ${'ack p50'.padStart(10)} ${'ack p99'.padStart(10)}  (ms from enqueue)`);
    for (const r of [sqlite, normal, jetstream, sqs]) console.log(row(r));
    for (const engine of [jetstream, sqs]) {
      for (const base of [sqlite, normal]) {
        console.log(
          `${engine.name} / ${base.name}: throughput x${(engine.tasksPerS / base.tasksPerS).toFixed(2)}, ` +
            `lease p50 x${(engine.toLease.p50 / base.toLease.p50).toFixed(2)}, ` +
            `round trip p50 x${(engine.roundTrip.p50 / base.roundTrip.p50).toFixed(2)}`,
        );
      }
    }
  } finally {
    const exited = new Promise((resolve) => nats.child.once('exit', resolve));
    nats.child.kill('SIGTERM');
    await exited;
    await sqsServer.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
