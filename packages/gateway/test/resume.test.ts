import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNTHETIC_DEIDENTIFICATION, writeXaRun } from '@arteria/dicom';
import { Gateway, Outbox, createS3Client, memoryJournal, s3PartStore, uploadToStore } from '@arteria/gateway';
import { BUCKET, gatewayOptions, withGrants, memoryLogger, objectBytes, sha256, startServersWithResponder, type Responder, type Servers } from './helpers.js';
import { startStoreProxy, type StoreProxy } from './store-proxy.js';

const CHILD = fileURLToPath(new URL('./fixtures/gateway-child.mjs', import.meta.url));
const PART = 5 * 1024 * 1024;

let servers: Servers;
let responder: Responder;
let run: Buffer;
let runFile: string;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
  // 13 parts of 5 MiB: a valid multi-frame XA run whose pixels are noise (cheap to make).
  const frames = 62;
  const pixels = new Uint8Array(1024 * 1024 * frames);
  randomFillSync(pixels);
  run = writeXaRun({ rows: 1024, columns: 1024, frames, pixels, bitsStored: 8, frameTimeMs: 66.7, deidentificationMethod: SYNTHETIC_DEIDENTIFICATION });
  runFile = join(servers.directory, 'large-run.dcm');
  await writeFile(runFile, run);
}, 120_000);

afterAll(async () => servers?.close());

const partCount = (bytes: number): number => Math.ceil(bytes / PART);

interface ChildLine {
  type: string;
  part?: number;
  resumed?: boolean;
  requestId?: string;
}

/** Starts a gateway process; `onLine` sees each JSON line it prints. */
function startChild(options: unknown, send: string | undefined, onLine: (line: ChildLine, child: ChildProcess) => void): { child: ChildProcess; exited: Promise<number | null> } {
  const args = [CHILD, JSON.stringify(options), ...(send === undefined ? [] : [send])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  createInterface({ input: child.stdout }).on('line', (text) => onLine(JSON.parse(text) as ChildLine, child));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited };
}

async function openUploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
  const listed = await servers.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Uploads ?? []).map((u) => ({ key: u.Key ?? '', uploadId: u.UploadId ?? '' }));
}

/** Parts the store holds for the device's one open upload. */
async function heldParts(prefix: string): Promise<number[]> {
  const [upload] = await openUploads(prefix);
  if (upload === undefined) return [];
  const parts = await s3PartStore(servers.s3, BUCKET).listParts(upload.key, upload.uploadId, new AbortController().signal);
  return (parts ?? []).map((p) => p.partNumber);
}

/** Runs a gateway child through a throttled proxy and SIGKILLs it once `killAfterParts` parts were newly stored. */
async function interrupted(proxy: StoreProxy, options: unknown, send: string | undefined, killAfterParts: number): Promise<{ sentBefore: Set<number>; held: number[] }> {
  const first = proxy.partRequests.length;
  let stored = 0;
  const { exited } = startChild(options, send, (line, child) => {
    if (line.type === 'progress' && line.resumed === false && ++stored === killAfterParts) child.kill('SIGKILL');
    if (line.type === 'result') throw new Error('the run completed before the kill');
  });
  await exited;
  await proxy.idle(); // every request of the killed process has ended at the store
  return { sentBefore: new Set(proxy.partRequests.slice(first)), held: await heldParts(`acme/${(options as { device: string }).device}/`) };
}

describe('resumable upload', () => {
  // `grants`: the gateway holds no store key; a restart asks for a fresh grant for the same upload id.
  it.each(['keys', 'grants'] as const)('resumes a SIGKILLed gateway\'s upload (%s): only missing parts are sent, at most one again per interruption, the result comes once', async (mode) => {
    const device = `resume-kill-${mode}`;
    const proxy = await startStoreProxy(Number(new URL(servers.s3Endpoint).port), 24 * 1024 * 1024);
    try {
      const base = mode === 'grants' ? withGrants(gatewayOptions(servers, device)) : gatewayOptions(servers, device);
      const options = { ...base, s3: { ...base.s3, endpoint: proxy.endpoint }, partSizeBytes: PART, uploadConcurrency: 1, segmentWholeFilesOverBytes: 0 }; // the whole-file multipart path, not segments
      const total = partCount(run.length);

      const one = await interrupted(proxy, options, runFile, 3);
      expect(one.held.length).toBeGreaterThanOrEqual(3);
      expect(one.held.length).toBeLessThan(total);
      const two = await interrupted(proxy, options, undefined, 3);
      const resentAtTwo = [...two.sentBefore].filter((p) => one.held.includes(p) || (one.sentBefore.has(p) && !one.held.includes(p)));
      // Parts the store held are never sent again; only a part cut mid-transfer by the kill is.
      expect([...two.sentBefore].filter((p) => one.held.includes(p))).toEqual([]);
      expect(resentAtTwo.length).toBeLessThanOrEqual(1);

      const afterTwo = proxy.partRequests.length;
      const results: string[] = [];
      const { exited } = startChild(options, undefined, (line) => {
        if (line.type === 'result' && line.requestId !== undefined) results.push(line.requestId);
      });
      expect(await exited).toBe(0);
      const sentThree = proxy.partRequests.slice(afterTwo);
      // The last restart sends exactly the parts the store did not hold.
      expect([...sentThree].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1).filter((p) => !two.held.includes(p)));
      expect(sentThree.filter((p) => two.sentBefore.has(p) && !two.held.includes(p)).length).toBeLessThanOrEqual(1);
      const everySent = proxy.partRequests.length;
      expect(everySent - total).toBeLessThanOrEqual(2); // two interruptions, at most one part again each

      // Delivered once: one request id, one result, one object with the run's bytes, no upload left open.
      const requests = responder.requestsOf(device);
      expect(new Set(requests.map((r) => r.request.id)).size).toBe(1);
      expect(results).toEqual([requests[0]?.request.id]);
      expect(requests.every((r) => r.objectComplete)).toBe(true);
      expect(requests[0]?.request.inputs[0]?.sha256).toBe(sha256(run));
      expect((await objectBytes(servers.s3, requests[0]?.request.inputs[0]?.uri ?? '')).equals(run)).toBe(true);
      expect(await openUploads(`acme/${device}/`)).toEqual([]);
      const outbox = Outbox.open(base.outboxPath, { maxEntries: 10, keepFinishedEntries: 10 });
      try {
        expect(outbox.counts()).toMatchObject({ pending: 0, uploaded: 0, published: 0, done: 1 });
        expect(outbox.uploads.all()).toEqual([]);
      } finally {
        outbox.close();
      }
      if (mode === 'grants') expect(responder.grantRequests.length).toBeGreaterThan(0);
      console.log(`resume (${mode}): ${total} parts, sent ${everySent} in all over 2 kills (${everySent - total} again)`);
    } finally {
      await proxy.close();
    }
  }, 180_000);

  // `grants`: part URLs come a batch per grant, asked for ahead of the parts in flight.
  it.each(['keys', 'grants'] as const)('with parts in parallel (%s), never sends again a part the store held', async (mode) => {
    const device = `resume-kill-2-${mode}`;
    const proxy = await startStoreProxy(Number(new URL(servers.s3Endpoint).port), 24 * 1024 * 1024);
    try {
      const base = mode === 'grants' ? withGrants(gatewayOptions(servers, device)) : gatewayOptions(servers, device);
      const options = { ...base, s3: { ...base.s3, endpoint: proxy.endpoint }, partSizeBytes: PART, uploadConcurrency: 4, segmentWholeFilesOverBytes: 0 };
      const one = await interrupted(proxy, options, runFile, 4);
      const after = proxy.partRequests.length;
      const { exited } = startChild(options, undefined, () => undefined);
      expect(await exited).toBe(0);
      const sent = proxy.partRequests.slice(after);
      expect(sent.filter((p) => one.held.includes(p))).toEqual([]);
      expect(sent.length).toBe(partCount(run.length) - one.held.length);
      // Only parts cut in flight are sent again: at most one per parallel slot.
      expect(sent.filter((p) => one.sentBefore.has(p)).length).toBeLessThanOrEqual(4);
      // Delivered once, with the run's bytes.
      const requests = responder.requestsOf(device);
      expect(new Set(requests.map((r) => r.request.id)).size).toBe(1);
      expect((await objectBytes(servers.s3, requests[0]?.request.inputs[0]?.uri ?? '')).equals(run)).toBe(true);
      expect(await openUploads(`acme/${device}/`)).toEqual([]);
      if (mode === 'grants') {
        // One grant for the parts each process sends (13 parts), never one per part.
        const asks = responder.grantRequests.filter((g) => g.key.startsWith(`acme/${device}/`));
        expect(asks.filter((g) => (g.parts?.length ?? 0) > 0).length).toBeLessThanOrEqual(2);
      }
    } finally {
      await proxy.close();
    }
  }, 180_000);

  it('finds an upload completed just before a crash and sends nothing again', async () => {
    const proxy = await startStoreProxy(Number(new URL(servers.s3Endpoint).port), 1024 * 1024 * 1024);
    const s3 = createS3Client({ endpoint: proxy.endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    try {
      const journal = memoryJournal(); // keeps its record after success, as a crash before the outbox's commit would
      const target = { bucket: BUCKET, key: 'acme/resume-3/1.2.3/e.dcm', source: runFile };
      const options = { journal, entryId: 'e', partSizeBytes: PART };
      const first = await uploadToStore(s3PartStore(s3, BUCKET), target, options);
      const sent = proxy.partRequests.length;
      expect(sent).toBe(partCount(run.length));
      const again = await uploadToStore(s3PartStore(s3, BUCKET), target, options);
      expect(again).toEqual(first);
      expect(proxy.partRequests.length).toBe(sent);
      expect(proxy.putRequests).toBe(0);
    } finally {
      s3.destroy();
      await proxy.close();
    }
  });

  it('reads every page of ListParts', async () => {
    const key = 'acme/resume-4/1.2.3/p.dcm';
    const created = await servers.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    for (let part = 1; part <= 5; part += 1) {
      await servers.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: part, Body: Buffer.alloc(10, part) }));
    }
    const parts = await s3PartStore(servers.s3, BUCKET, { listPageSize: 2 }).listParts(key, created.UploadId ?? '', new AbortController().signal);
    expect(parts?.map((p) => p.partNumber)).toEqual([1, 2, 3, 4, 5]);
    expect(await s3PartStore(servers.s3, BUCKET).listParts(key, 'f'.repeat(32), new AbortController().signal)).toBeUndefined();
  });

  it('aborts abandoned uploads under its own prefix and the upload of a withdrawn run; keeps the rest', async () => {
    const device = 'sweep-1';
    const create = async (key: string): Promise<string> => (await servers.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))).UploadId ?? '';
    const age = async (uploadId: string): Promise<void> => {
      const past = new Date(Date.now() - 2 * 24 * 3600 * 1000);
      await utimes(join(servers.storeDir, BUCKET, '._S3rver_uploads', uploadId, 'key'), past, past);
    };
    const abandoned = await create(`acme/${device}/1.2.9/lost.dcm`);
    await age(abandoned);
    const recent = await create(`acme/${device}/1.2.9/recent.dcm`);
    const othersOld = await create('acme/someone-else/1.2.9/theirs.dcm');
    await age(othersOld);

    const proxy = await startStoreProxy(Number(new URL(servers.s3Endpoint).port), 8 * 1024 * 1024);
    try {
      const base = gatewayOptions(servers, device);
      await using gateway = new Gateway({ ...base, s3: { ...base.s3, endpoint: proxy.endpoint }, partSizeBytes: PART, segmentWholeFilesOverBytes: 0 }, { logger: memoryLogger() });
      const withdraw = new AbortController();
      const firstPart = new Promise<void>((resolve) => gateway.on('progress', () => resolve()));
      await gateway.start();
      const sending = gateway.send(runFile, { signal: withdraw.signal }).catch((err: unknown) => err);
      await firstPart;
      const [withdrawn] = (await openUploads(`acme/${device}/`)).filter((u) => u.uploadId !== abandoned && u.uploadId !== recent);
      expect(withdrawn).toBeDefined();
      withdraw.abort(new Error('the operator cancelled the run'));
      await sending;
      for (;;) {
        const open = (await openUploads('acme/')).map((u) => u.uploadId);
        if (!open.includes(abandoned) && !open.includes(withdrawn?.uploadId ?? '')) {
          expect(open).toContain(recent);
          expect(open).toContain(othersOld);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
