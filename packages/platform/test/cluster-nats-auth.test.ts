import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError, RequestV1, requestId } from '@arteria/protocol';
import { NatsCaptureIngestService, NatsRequestLedger, NatsWorkQueue, readNatsAuth, type NatsAuth, type NatsCaptureIngestDeps } from '@arteria/engine-nats';
import { openSharedStores } from '../src/cluster/stores.js';
import { parseClusterConfig } from '../src/cluster/cluster-config.js';
import { TestNatsServer } from '@arteria/testing';

const USER = 'arteria-platform';
const PASSWORD = 'correct horse battery staple';

/** Refused credentials are a typed configuration error that names the settings to fix. */
const refused = { name: 'ArteriaError', code: 'CONFIG_INVALID', message: expect.stringMatching(/refused the platform's credentials.*nats\.user/) as unknown };

/** The platform's NATS clients against a server that admits only users with a password (no no_auth_user). */
describe('NATS credentials', () => {
  let server: TestNatsServer;
  let dir: string;
  let auth: NatsAuth;

  beforeAll(async () => {
    server = await TestNatsServer.start(['authorization {', `  users = [ { user: "${USER}", password: "${PASSWORD}" } ]`, '}']);
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-nats-auth-'));
    // Written as a Kubernetes secret or `echo` writes it: one trailing newline.
    await writeFile(path.join(dir, 'password'), `${PASSWORD}\n`);
    await writeFile(path.join(dir, 'wrong'), 'not it');
    const read = await readNatsAuth({ user: USER, passwordFile: path.join(dir, 'password'), credsFile: '' });
    if (!read) throw new Error('no credentials read');
    auth = read;
  });

  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the password from its file, and refuses incomplete or mixed settings', async () => {
    expect(auth).toEqual({ user: USER, pass: PASSWORD });
    expect(await readNatsAuth({ user: '', passwordFile: '', credsFile: '' })).toBeUndefined();
    await expect(readNatsAuth({ user: USER, passwordFile: '', credsFile: '' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(readNatsAuth({ user: USER, passwordFile: path.join(dir, 'password'), credsFile: path.join(dir, 'password') })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(readNatsAuth({ user: USER, passwordFile: path.join(dir, 'missing'), credsFile: '' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('nats.passwordFile') as unknown });
  });

  it('the work queue enqueues, leases and acks with the right credentials', async () => {
    const queue = await NatsWorkQueue.open({ servers: server.url, name: 'AUTH_TASKS', maxDeliveries: 3, auth });
    try {
      expect((await queue.enqueue(Buffer.from('task'), { dedupeId: 'one' })).enqueued).toBe(true);
      const [lease] = await queue.lease({ max: 1, visibilityMs: 30_000, waitMs: 5_000 });
      expect(lease?.payload.toString()).toBe('task');
      if (lease) await queue.ack(lease);
    } finally {
      await queue.close();
    }
  });

  it('the ledger records and reads with the right credentials', async () => {
    const ledger = await NatsRequestLedger.open({ servers: [server.url], stream: 'AUTH_LEDGER', auth });
    try {
      const sha256 = 'c'.repeat(64);
      const fields = { tenant: 'h1', device: 'cl-1', instanceUid: '1.2.3', algorithm: 'nap@^1' };
      const request = RequestV1.parse({
        v: 1,
        id: requestId({ ...fields, sha256, inputUris: ['s3://runs/h1/cl-1/1.2.3.dcm'] }),
        ...fields,
        inputs: [{ uri: 's3://runs/h1/cl-1/1.2.3.dcm', size: 10, sha256, contentType: 'application/dicom' }],
        timings: { acquired: 1_000, uploaded: 1_100, published: 1_200 },
      });
      const entry = { requestId: request.id, tenant: 'h1', device: 'cl-1', algorithm: request.algorithm, acceptedAt: 2_000, request };
      expect(await ledger.recordAccepted(entry)).toBe('new');
      expect(await ledger.get(request.id)).toMatchObject({ state: 'accepted', requestId: request.id });
      expect(await ledger.counts()).toMatchObject({ accepted: 1 });
    } finally {
      await ledger.close();
    }
  });

  it('queue, ledger and capture ingest fail with a typed error without credentials or with a wrong password', async () => {
    const wrong = { user: USER, pass: 'not it' };
    for (const bad of [undefined, wrong]) {
      await expect(NatsWorkQueue.open({ servers: server.url, name: 'AUTH_TASKS', maxDeliveries: 3, ...(bad ? { auth: bad } : {}) })).rejects.toMatchObject(refused);
      await expect(NatsRequestLedger.open({ servers: [server.url], stream: 'AUTH_LEDGER', ...(bad ? { auth: bad } : {}) })).rejects.toMatchObject(refused);
    }
    // Connecting comes first, so the ingest it would feed is never reached.
    const deps = {} as NatsCaptureIngestDeps;
    const capture = { servers: [server.url], stream: 'AUTH_REQUESTS', consumer: 'arteria-ingest', replicas: 1, maxAgeMs: 60_000, ackWaitMs: 30_000, maxInHand: 4 };
    await expect(NatsCaptureIngestService.start(capture, deps)).rejects.toMatchObject(refused);
    const error: unknown = await NatsWorkQueue.open({ servers: server.url, maxDeliveries: 3 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ArteriaError);
    expect((error as ArteriaError).retryable).toBe(false);
  });

  it('the cluster config passes nats.user and nats.passwordFile to the shared queue and ledger', async () => {
    const base = { dataDir: dir, queue: { kind: 'nats', natsServers: server.url, natsStream: 'AUTH_CLUSTER' }, ledger: { kind: 'nats', natsStream: 'AUTH_CLUSTER_LEDGER' } };
    const stores = await openSharedStores(parseClusterConfig({ ...base, nats: { user: USER, passwordFile: path.join(dir, 'password') } }));
    try {
      expect((await stores.queue.enqueue(Buffer.from('x'), { dedupeId: 'cluster' })).enqueued).toBe(true);
      expect(await stores.ledger.counts()).toMatchObject({ accepted: 0 });
    } finally {
      await stores.close();
    }
    await expect(openSharedStores(parseClusterConfig({ ...base, nats: { user: USER, passwordFile: path.join(dir, 'wrong') } }))).rejects.toMatchObject(refused);
  });
});
