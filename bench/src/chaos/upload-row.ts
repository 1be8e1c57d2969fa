import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SYNTHETIC_DEIDENTIFICATION, writeXaRun } from '@arteria/dicom';
import { legacyDeviceToken } from '@arteria/protocol';
import type { ChaosCluster } from './cluster.js';
import type { Fault } from './faults.js';
import type { ChaosRow } from './row.js';

/** The gateway's own kill-test process: prints upload progress and results as JSON lines. */
const GATEWAY_CHILD = fileURLToPath(new URL('../../../packages/gateway/test/fixtures/gateway-child.mjs', import.meta.url));
const PART = 5 * 1024 * 1024;
const DEVICE = 'gw-upload';

/** What the gateway processes did to the run's parts, beside the row's counts. */
export interface UploadKillRow extends ChaosRow {
  parts: number;
  /** Parts each process stored (the first until its SIGKILL, the second after the restart). */
  storedBeforeKill: number;
  storedAfterRestart: number;
  /** Parts the restarted gateway stored though the store held them already (must be 0). */
  storedAgain: number;
}

/**
 * A gateway SIGKILLed while it uploads a large run (11 parts of 5 MiB, one at a time),
 * then started again on the same outbox: it resumes the multipart upload, sends only the
 * parts the store does not hold, and the run is answered once.
 */
export const gatewayKillMidUpload: Fault = {
  name: 'gateway SIGKILL mid-upload, restarted',
  requests: 1,
  loadMs: 0,
  atMs: 0,
  answerWithinMs: 60_000,
  cluster: { gatewayDevices: [DEVICE] },
  inject: () => Promise.reject(new Error('this row runs its own gateway: use run()')),
  run: (cluster, fault, log) => runUploadKill(cluster, fault, log),
};

interface ChildLine {
  type: string;
  part?: number;
  resumed?: boolean;
  requestId?: string;
  status?: string;
}

async function runUploadKill(cluster: ChaosCluster, fault: Fault, log: (line: string) => void): Promise<UploadKillRow> {
  const dir = path.join(cluster.dir, DEVICE);
  await mkdir(dir, { recursive: true });
  try {
    // A valid multi-frame XA run whose pixels are noise: 200 frames of 512 x 512 (the
    // nap fixture's largest), 11 parts.
    const frames = 200;
    const pixels = new Uint8Array(512 * 512 * frames);
    randomFillSync(pixels);
    const run = writeXaRun({ rows: 512, columns: 512, frames, pixels, bitsStored: 8, frameTimeMs: 66.7, deidentificationMethod: SYNTHETIC_DEIDENTIFICATION });
    const runFile = path.join(dir, 'large-run.dcm');
    await writeFile(runFile, run);
    const parts = Math.ceil(run.length / PART);
    const address = { tenant: cluster.tenant, device: DEVICE };
    const options = {
      ...address,
      token: legacyDeviceToken(cluster.tenantSecret, address),
      mqttUrl: `mqtt://127.0.0.1:${cluster.proxy.port}`,
      s3: { endpoint: cluster.storeEndpoint, region: 'us-east-1', bucket: cluster.bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      outboxPath: path.join(dir, 'outbox.sqlite'),
      algorithm: 'nap@^1',
      resendIntervalMs: cluster.options.resendMs,
      deidentification: { enabled: false },
      partSizeBytes: PART,
      uploadConcurrency: 1,
    };
    const sentAt = Date.now();
    // Killed once it stored a few parts, with the next one on its way.
    const first = await gatewayProcess(options, runFile, fault.answerWithinMs, (line, kill) => {
      if (line.type === 'progress' && line.resumed === false && line.part !== undefined && line.part >= 4) kill();
    });
    log(`${fault.name}: killed after storing parts ${[...first.stored].join(', ')}; ${first.results.length} result(s)`);
    const restartedAt = Date.now();
    const second = await gatewayProcess(options, undefined, fault.answerWithinMs, () => undefined);
    const answeredAt = Date.now();
    log(`${fault.name}: restarted gateway stored parts ${[...second.stored].join(', ')}; results ${second.results.map((r) => r.status).join(', ')}`);
    const results = [...first.results, ...second.results];
    const computed = await cluster.computations();
    const computedTwice = [...computed.values()].some((n) => n > 1) ? 1 : 0;
    const storedAgain = [...second.stored].filter((p) => first.stored.has(p)).length;
    const missing = Array.from({ length: parts }, (_, i) => i + 1).filter((p) => !first.stored.has(p) && !second.stored.has(p)).length;
    if (storedAgain > 0 || missing > 0) log(`${fault.name}: ${storedAgain} part(s) stored again, ${missing} never stored`);
    const answered = results.length > 0;
    return {
      fault: fault.name,
      sent: 1,
      delivered: answered ? 1 : 0,
      lost: answered ? 0 : 1,
      // A part the store held and the restarted gateway stored again is a repeated effect too.
      duplicateEffects: Math.max(0, results.length - 1) + computedTwice + storedAgain,
      deliveredMoreThanOnce: Math.max(0, results.length - 1),
      repeatedAcrossKill: 0,
      computedMoreThanOnce: computedTwice,
      brokerResent: 0,
      ledgerMismatch: 0,
      unexpected: results.filter((r) => r.status !== 'ok').length,
      maxLatencyMs: answered ? answeredAt - sentAt : 0,
      recoveryMs: answered ? answeredAt - restartedAt : 0,
      pendingAtHeal: 1,
      parts,
      storedBeforeKill: first.stored.size,
      storedAfterRestart: second.stored.size,
      storedAgain,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the gateway in a process of its own until it exits (after its result), is killed, or `timeoutMs` passed. */
async function gatewayProcess(options: unknown, runFile: string | undefined, timeoutMs: number, onLine: (line: ChildLine, kill: () => void) => void): Promise<{ stored: Set<number>; results: ChildLine[] }> {
  const stored = new Set<number>();
  const results: ChildLine[] = [];
  const child = spawn(process.execPath, [GATEWAY_CHILD, JSON.stringify(options), ...(runFile === undefined ? [] : [runFile])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = (): void => void child.kill('SIGKILL');
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as ChildLine;
    if (line.type === 'progress' && line.resumed === false && line.part !== undefined) stored.add(line.part);
    if (line.type === 'result') results.push(line);
    onLine(line, kill);
  });
  const timer = setTimeout(kill, timeoutMs);
  await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { stored, results };
}
