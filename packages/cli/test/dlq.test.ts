import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlgorithmRegistry } from '@arteria/worker';
import { Ingest } from '@arteria/ingest';
import { decodeTask, type ResultPublisher } from '@arteria/ports';
import { openSharedStores, parseClusterConfig, type ClusterConfigInput, type SharedStores } from '@arteria/platform';
import { RequestV1, encodePayload, requestId, type ResultV1 } from '@arteria/protocol';
import { CLI, startNatsServer } from './support/cluster.js';

const run = promisify(execFile);
const ECHO = path.resolve('packages/testing/fixtures/algorithms/echo');

/** The CLI's exit code and output, without throwing on a failure. */
async function arteria(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ARTERIA_CONFIG: '' } });
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: e.stdout ?? '', err: e.stderr ?? '' };
  }
}

const noResults: ResultPublisher = {
  publish: (result: ResultV1) => Promise.reject(new Error(`no result expected here, got ${result.status}`)),
  close: () => Promise.resolve(),
};

/** Admits one request through ingest, then lets every delivery's lease run out (its worker died each time). */
async function deadLetterOne(stores: SharedStores, instanceUid: string): Promise<string> {
  const registry = await AlgorithmRegistry.load([ECHO]);
  const ingest = new Ingest({ queue: stores.queue, ledger: stores.ledger, results: noResults, bucket: 'arteria-runs', algorithms: registry });
  const algorithm = 'echo@^1';
  const uri = `s3://arteria-runs/acme/cl-1/${instanceUid}/run.dcm`;
  const sha256 = 'a'.repeat(64);
  const request = RequestV1.parse({
    v: 1,
    id: requestId({ tenant: 'acme', device: 'cl-1', instanceUid, sha256, algorithm, inputUris: [uri] }),
    tenant: 'acme',
    device: 'cl-1',
    algorithm,
    instanceUid,
    inputs: [{ uri, size: 100, sha256, contentType: 'application/dicom' }],
    timings: { published: Date.now() },
  });
  expect(await ingest.handle({ tenant: 'acme', device: 'cl-1', kind: 'requests' }, encodePayload(request))).toMatchObject({ status: 'accepted' });
  // Leased and let expire until the queue dead-letters it. Polled for the letter itself, up to
  // 30 s: stopping at the first 1 s look that found nothing could stop before the last
  // redelivery when a busy machine (or the NATS consumer's redelivery) is slower than that.
  const deadline = Date.now() + 30_000;
  let [letter] = await stores.queue.deadLetters(1);
  while (letter === undefined && Date.now() < deadline) {
    await stores.queue.lease({ max: 1, visibilityMs: 50, waitMs: 1_000 });
    [letter] = await stores.queue.deadLetters(1);
  }
  expect(letter).toBeDefined();
  return letter!.taskId;
}

/**
 * `arteria dlq` end to end on both engines: an embedded data dir (SQLite) and a cluster
 * configuration (NATS JetStream queue).
 */
describe.each([
  { engine: 'SQLite data dir', nats: false },
  { engine: 'NATS JetStream cluster config', nats: true },
])('arteria dlq on $engine', ({ nats }) => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startNatsServer>> | undefined;
  let input: ClusterConfigInput;
  let flags: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-dlq-cli-'));
    server = nats ? await startNatsServer(dir) : undefined;
    input = { dataDir: dir, algorithms: { bundled: false, dirs: [ECHO] }, queue: server ? { kind: 'nats', natsServers: server.url, maxDeliveries: 2 } : { maxDeliveries: 2 } };
    const file = path.join(dir, 'cluster.json');
    await writeFile(file, JSON.stringify(input));
    flags = nats ? ['--config', file] : ['--data-dir', dir, '--algorithms-bundled', 'false', '--algorithms-dirs', ECHO];
  }, 60_000);
  afterAll(async () => {
    const child = server?.child;
    // Wait for it to exit: it writes its store until then, and the folder is removed next.
    if (child !== undefined && child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM'));
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('lists and shows a dead letter, replays it once through admission, refuses an unknown id', async () => {
    const stores = await openSharedStores(parseClusterConfig(input));
    let taskId: string;
    try {
      taskId = await deadLetterOne(stores, '1.2.826.0.1.3680043.10.9.7');
    } finally {
      await stores.close();
    }

    const list = await arteria('dlq', 'list', ...flags);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(new RegExp(`^${taskId}\\s.*\\s2\\s+acme/cl-1\\s+echo@\\^1 \\(1\\.0\\.0\\)\\s+max deliveries \\(2\\) exceeded`, 'm'));
    const shown = await arteria('dlq', 'show', taskId, '--json', ...flags);
    expect(shown.code, shown.err).toBe(0);
    expect(JSON.parse(shown.out)).toMatchObject({ taskId, deliveries: 2, request: { tenant: 'acme', device: 'cl-1', algorithm: 'echo@^1' }, pinned: { name: 'echo', version: '1.0.0' }, ledger: { state: 'accepted' } });

    const unknown = await arteria('dlq', 'replay', '987654', ...flags);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('DEAD_LETTER_NOT_FOUND');
    const replayed = await arteria('dlq', 'replay', taskId, ...flags);
    expect(replayed.code, replayed.err).toBe(0);
    expect(replayed.out).toContain(`${taskId}  replayed as task`);
    const twice = await arteria('dlq', 'replay', '--all', ...flags);
    expect(twice).toMatchObject({ code: 0, out: 'no dead letters\n' });
    expect((await arteria('dlq', 'list', ...flags)).out).toBe('no dead letters\n');

    // Exactly one task is queued again, pinned by admission.
    const after = await openSharedStores(parseClusterConfig(input));
    try {
      expect(await after.queue.stats()).toMatchObject({ ready: 1, deadLettered: 0 });
      const [lease] = await after.queue.lease({ max: 1, visibilityMs: 10_000, waitMs: 1_000 });
      expect(decodeTask(lease!.payload).algorithm).toMatchObject({ name: 'echo', version: '1.0.0' });
      await after.queue.ack(lease!);
    } finally {
      await after.close();
    }
  }, 240_000);

});

it('arteria dlq answers usage errors with status 2', async () => {
  expect((await arteria('dlq', 'replay')).code).toBe(2);
  expect((await arteria('dlq', 'show')).code).toBe(2);
  expect((await arteria('dlq', 'frobnicate')).code).toBe(2);
}, 120_000);
