import { execFile } from 'node:child_process';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { legacyDeviceToken } from '@arteria/protocol';
import type { ChaosCluster } from './cluster.js';
import type { Fault } from './faults.js';
import type { GatewayRunOutcome, GatewayThreadInput, GatewayThreadMessage } from './gateway-thread.js';
import type { ChaosRow } from './row.js';
import { sleep } from './net.js';

const run = promisify(execFile);

/** What a fault does to the gateway's host while its runs come in. */
export interface GatewayFaultContext {
  cluster: ChaosCluster;
  /** The folder of the gateway's outbox (its SQLite file and spool). */
  outboxDir: string;
}

export interface GatewayFaultSettings {
  name: string;
  device: string;
  runs: number;
  spacingMs: number;
  atMs: number;
  answerWithinMs: number;
  frames?: number;
  clockOffsetMs?: number;
  /** Put the outbox on a tmpfs of this size (mounted for the row; needs root). */
  outboxFsBytes?: number;
  /** The fault; resolves once healed. */
  during(ctx: GatewayFaultContext): Promise<void>;
}

/** A row whose device is a real gateway (in a worker thread, with its own wall clock). */
export function gatewayFault(settings: GatewayFaultSettings): Fault {
  return {
    name: settings.name,
    requests: settings.runs,
    loadMs: settings.runs * settings.spacingMs,
    atMs: settings.atMs,
    answerWithinMs: settings.answerWithinMs,
    cluster: { gatewayDevices: [settings.device] },
    inject: () => Promise.reject(new Error(`${settings.name} runs with its gateway: use run()`)),
    run: (cluster, _fault, log) => runGatewayRow(cluster, settings, log),
  };
}

/** Fills the file system under `dir` to its last byte; returns the filler to remove at the heal. */
export async function fillDisk(dir: string): Promise<string> {
  const filler = path.join(dir, 'filler');
  const { bavail, bsize } = await statfs(dir);
  try {
    await writeFile(filler, Buffer.alloc(Number(bavail) * Number(bsize)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  return filler;
}

async function runGatewayRow(cluster: ChaosCluster, s: GatewayFaultSettings, log: (line: string) => void): Promise<ChaosRow & { refused: number; refusedCodes: string[] }> {
  const outboxDir = path.join(cluster.dir, `gateway-${s.device}`);
  await mkdir(outboxDir, { recursive: true });
  if (s.outboxFsBytes !== undefined) await run('mount', ['-t', 'tmpfs', '-o', `size=${s.outboxFsBytes}`, 'tmpfs', outboxDir]);
  try {
    const offset = s.clockOffsetMs ?? 0;
    const address = { tenant: cluster.tenant, device: s.device };
    const input: GatewayThreadInput = {
      clockOffsetMs: offset,
      runs: s.runs,
      spacingMs: s.spacingMs,
      seedBase: 100_000,
      frames: s.frames ?? 2,
      options: {
        ...address,
        token: legacyDeviceToken(cluster.tenantSecret, address),
        mqttUrl: `mqtt://127.0.0.1:${cluster.proxy.port}`,
        s3: { endpoint: cluster.storeEndpoint, bucket: cluster.bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        outboxPath: path.join(outboxDir, 'outbox.db'),
        algorithm: 'nap@^1',
        resendIntervalMs: cluster.options.resendMs,
        maxRetryDelayMs: 5_000,
        resultTimeoutMs: s.atMs + s.answerWithinMs + s.runs * s.spacingMs,
        deidentification: { enabled: false },
      },
    };
    const thread = new Worker(new URL('./gateway-thread.js', import.meta.url), { workerData: input });
    let started: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (started = resolve));
    const done = new Promise<Extract<GatewayThreadMessage, { kind: 'done' }>>((resolve, reject) => {
      thread.on('message', (message: GatewayThreadMessage) => {
        if (message.kind === 'log') log(`${s.name}: gateway: ${message.line}`);
        else if (message.kind === 'started') started();
        else resolve(message);
      });
      thread.once('error', (err: unknown) => reject(err instanceof Error ? err : new Error(`gateway thread failed: ${JSON.stringify(err)}`)));
      thread.once('exit', (code) => reject(new Error(`gateway thread exited with ${code} before it reported`)));
    });
    // The load starts once the gateway runs; the fault comes `atMs` into it.
    await Promise.race([running, done]);
    const loadStart = Date.now();
    await Promise.race([sleep(s.atMs), done]);
    log(`${s.name}: injecting`);
    await s.during({ cluster, outboxDir });
    const healAt = Date.now();
    log(`${s.name}: healed`);
    const { outcomes, ignoredResults } = await done;
    await thread.terminate();
    return count(cluster, s.name, outcomes, ignoredResults, { offset, healAt, started: loadStart });
  } finally {
    if (s.outboxFsBytes !== undefined) await run('umount', ['-l', outboxDir]).catch((err: unknown) => log(`${s.name}: umount: ${(err as Error).message}`));
    await rm(outboxDir, { recursive: true, force: true });
  }
}

async function count(
  cluster: ChaosCluster,
  fault: string,
  outcomes: GatewayRunOutcome[],
  ignoredResults: number,
  at: { offset: number; healAt: number; started: number },
): Promise<ChaosRow & { refused: number; refusedCodes: string[] }> {
  const computed = await cluster.computations();
  const taken = outcomes.filter((o) => o.kind !== 'refused');
  const answered = outcomes.flatMap((o) => (o.kind === 'answered' ? [o] : []));
  const refused = outcomes.flatMap((o) => (o.kind === 'refused' ? [o] : []));
  const computedTwice = taken.filter((o) => (computed.get(o.sopInstanceUid) ?? 0) > 1).length;
  const digests = await cluster.ledgerDigests(answered.map((o) => o.requestId));
  const ledgerMismatch = answered.filter((o) => o.recordHash === undefined || o.recordHash !== digests.get(o.requestId)).length;
  // The thread's clock is off by `offset`: its times are compared with each other, or corrected.
  const maxLatencyMs = Math.max(0, ...answered.map((o) => o.answeredAt - o.sentAt));
  const beforeHeal = answered.filter((o) => o.sentAt - at.offset < at.healAt);
  const lastAnswer = Math.max(at.healAt, ...beforeHeal.map((o) => o.answeredAt - at.offset));
  return {
    fault,
    sent: taken.length,
    delivered: answered.length,
    lost: taken.length - answered.length,
    duplicateEffects: ignoredResults + computedTwice,
    deliveredMoreThanOnce: ignoredResults,
    repeatedAcrossKill: 0,
    computedMoreThanOnce: computedTwice,
    brokerResent: 0,
    ledgerMismatch,
    unexpected: answered.filter((o) => o.status !== 'ok').length,
    maxLatencyMs: Math.round(maxLatencyMs),
    recoveryMs: Math.round(lastAnswer - at.healAt),
    pendingAtHeal: beforeHeal.filter((o) => o.answeredAt - at.offset >= at.healAt).length,
    refused: refused.length,
    refusedCodes: [...new Set(refused.map((o) => `${o.code}: ${o.message.slice(0, 120)}`))],
  };
}
