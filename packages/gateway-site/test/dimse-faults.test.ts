import { mkdtemp, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { DicomReceiver, type ReceivedRun } from '@arteria/gateway-site';
import { exec, memoryLogger } from '@arteria/testing';
import { RawDicomClient, halfPdu, wireObject } from './raw-dicom-client.js';

const AE = 'ARTERIA';
const MB = 1024 * 1024;
const SUCCESS = 0x0000;
const CANNOT_UNDERSTAND = 0xc000;
const DATASET_MISMATCH = 0xa900;

let directory: string;
let folder: string;
let receiver: DicomReceiver;
const runs: ReceivedRun[] = [];
const logger = memoryLogger();

/** A 3 MB run (512x512, 12 frames, 8 bits): its pixel data is far longer than 1 MB. */
const bigRun = (seed: number): Buffer => synthesizeXaRun({ seed, rows: 512, columns: 512, frames: 12, bitsStored: 8 }).bytes;

/** Polls a condition the gateway reaches on its own after a fault (no deadline of its own: the test timeout is the bound). */
async function eventually(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Files under the receiver's folder, at any depth, by name. */
async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}
const partials = async (): Promise<string[]> => (await filesIn(folder)).filter((f) => f.endsWith('.partial'));

/** Open file descriptors of this process (the receiver runs in it) that point into the receiver's folder. */
async function openHandles(): Promise<string[]> {
  const targets = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(folder));
}

const noLeftovers = async (): Promise<boolean> => (await partials()).length === 0 && (await openHandles()).length === 0;

/** A partial file for the transfer in progress exists and has grown past its header (the gateway is writing it). */
const writingStarted = async (): Promise<boolean> => {
  for (const file of await partials()) if ((await stat(file)).size > 64 * 1024) return true;
  return false;
};

const associated = (): Promise<RawDicomClient> => RawDicomClient.connect(receiver.port);

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'arteria-dimse-faults-'));
  folder = join(directory, 'incoming');
  receiver = new DicomReceiver({ aeTitle: AE, port: 0, host: '127.0.0.1', folder, stableMs: 200 }, (run) => runs.push(run), logger);
  await receiver.start();
});

afterAll(async () => {
  await receiver?.close();
  await rm(directory, { recursive: true, force: true });
});

const storedInstances = (): string[] => runs.flatMap((run) => run.instances.map((i) => i.sopInstanceUid));

describe('the DICOM port under faults', () => {
  it('answers a data set stopped 1 MB short of its pixel data with Cannot Understand, keeps nothing, and takes the whole object next', async () => {
    const object = wireObject(bigRun(101));
    const short = object.dataset.subarray(0, object.dataset.length - MB);
    const client = await associated();
    await client.associate(AE, 'CATHLAB', object);

    // The last fragment is flagged as last, but the Pixel Data element announces 1 MB more than came.
    expect(await client.store(object, short)).toBe(CANNOT_UNDERSTAND);
    await eventually(noLeftovers);
    expect(await filesIn(folder)).toEqual([]);

    // The same association goes on: the whole object is taken.
    expect(await client.store(object)).toBe(SUCCESS);
    await client.release();
    await client.closed; // the gateway closes its side after the release response
    await eventually(() => storedInstances().includes(object.sopInstanceUid));
    expect(await noLeftovers()).toBe(true);
  });

  it('answers bytes that are not a data set with Cannot Understand, and a data set of another instance with a mismatch status', async () => {
    const object = wireObject(bigRun(102));
    const client = await associated();
    await client.associate(AE, 'CATHLAB', object);
    // An element header whose VR is not a VR: unparsable.
    expect(await client.store(object, Buffer.from('0800180058580400616263640000', 'hex'))).toBe(CANNOT_UNDERSTAND);
    // A whole data set, but of another SOP instance than the command announced.
    const other = wireObject(bigRun(103));
    expect(await client.store(object, other.dataset)).toBe(DATASET_MISMATCH);
    await client.release();
    await client.closed;
    expect(await noLeftovers()).toBe(true);
    expect(storedInstances()).not.toContain(other.sopInstanceUid);
  });

  it('answers every damaged data set with a status, keeps nothing of the refused ones, and goes on serving the association', async () => {
    // Deterministic damage (a fixed-seed generator): bytes overwritten anywhere, the end cut off, bytes inserted.
    let state = Number(process.env.FUZZ_SEED ?? 20261208);
    const random = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const client = await associated();
    const template = wireObject(synthesizeXaRun({ seed: 107, rows: 16, columns: 16, frames: 4, bitsStored: 8 }).bytes);
    await client.associate(AE, 'CATHLAB', template);
    const statuses = new Map<number, number>();
    for (let i = 0; i < Number(process.env.FUZZ_RUNS ?? 60); i++) {
      const object = wireObject(synthesizeXaRun({ seed: 1000 + i, rows: 16, columns: 16, frames: 4, bitsStored: 8 }).bytes);
      let dataset = Buffer.from(object.dataset);
      const at = random(Math.min(dataset.length, 900)); // mostly the header, where the walker and parser work
      const kind = random(3);
      if (kind === 0) for (let b = 0; b < 1 + random(6); b++) dataset[Math.min(dataset.length - 1, at + b)] = random(256);
      else if (kind === 1) dataset = dataset.subarray(0, at);
      else dataset = Buffer.concat([dataset.subarray(0, at), Buffer.from(Array.from({ length: 1 + random(12) }, () => random(256))), dataset.subarray(at)]);
      const status = await client.store(object, dataset);
      expect([SUCCESS, CANNOT_UNDERSTAND, DATASET_MISMATCH], `damage ${i} (kind ${kind} at ${at}) got 0x${status.toString(16)}`).toContain(status);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status !== SUCCESS) expect(storedInstances()).not.toContain(object.sopInstanceUid);
    }
    // The same association still stores a whole object.
    const whole = wireObject(synthesizeXaRun({ seed: 1100, rows: 16, columns: 16, frames: 4, bitsStored: 8 }).bytes);
    expect(await client.store(whole)).toBe(SUCCESS);
    await client.release();
    await client.closed;
    await eventually(noLeftovers);
    expect(statuses.get(CANNOT_UNDERSTAND) ?? 0).toBeGreaterThan(10); // the damage was real
  });

  it('closes the association at once on an A-ABORT mid-transfer and removes the partial file and its handle', async () => {
    const object = wireObject(bigRun(104));
    const client = await associated();
    await client.associate(AE, 'CATHLAB', object);
    client.sendStore(object, object.dataset.subarray(0, object.dataset.length / 2), false);
    await eventually(writingStarted);
    expect(await openHandles()).not.toEqual([]);

    client.abort();
    // The client never closes its side: only the gateway can end this connection.
    await client.closed;
    await eventually(noLeftovers);
    expect(storedInstances()).not.toContain(object.sopInstanceUid);

    // The port serves the next association as usual.
    const next = await associated();
    await next.associate(AE, 'CATHLAB', object);
    expect(await next.store(object)).toBe(SUCCESS);
    await next.release();
    await eventually(() => storedInstances().includes(object.sopInstanceUid));
  });

  it('removes the partial file of a dropped connection while another association goes on', async () => {
    const object = wireObject(bigRun(105));
    const bystanderObject = wireObject(bigRun(106));
    const bystander = await associated();
    await bystander.associate(AE, 'CATHLAB', bystanderObject);

    const client = await associated();
    await client.associate(AE, 'CATHLAB', object);
    client.sendStore(object, object.dataset.subarray(0, 2 * MB), false);
    await client.write(halfPdu(object.dataset.subarray(2 * MB)));
    await eventually(writingStarted);
    client.drop();
    await client.closed;
    await eventually(noLeftovers);
    expect(storedInstances()).not.toContain(object.sopInstanceUid);

    // The association that was open throughout is unaffected.
    expect(await bystander.store(bystanderObject)).toBe(SUCCESS);
    await bystander.release();
    await bystander.closed;
    await eventually(() => storedInstances().includes(bystanderObject.sopInstanceUid));
  });

  it('stores with DCMTK storescu while a stalled association holds a partial transfer, and keeps what it acknowledged when storescu aborts', async () => {
    const stalledObject = wireObject(bigRun(107));
    const stalled = await associated();
    await stalled.associate(AE, 'CATHLAB', stalledObject);
    stalled.sendStore(stalledObject, stalledObject.dataset.subarray(0, MB), false);
    await eventually(writingStarted);

    const files = [108, 109].map((seed) => join(directory, `run-${seed}.dcm`));
    await Promise.all(files.map((file, i) => writeFile(file, bigRun(108 + i))));
    const uids = files.map((_, i) => wireObject(bigRun(108 + i)).sopInstanceUid);
    // One storescu releases, the other aborts after its objects were acknowledged.
    await exec('storescu', ['-aet', 'CATHLAB', '-aec', AE, '127.0.0.1', String(receiver.port), files[0] ?? '']);
    const { stderr } = await exec('storescu', ['--abort', '-aet', 'CATHLAB', '-aec', AE, '127.0.0.1', String(receiver.port), files[1] ?? '']);
    expect(stderr.split('\n').filter((line) => line.startsWith('E:'))).toEqual([]);
    await eventually(() => uids.every((uid) => storedInstances().includes(uid)));
    expect((await filesIn(folder)).filter((f) => f.endsWith('.dcm')).length).toBeGreaterThanOrEqual(2);

    // The stalled transfer is still there; dropping it now cleans it up.
    expect(await partials()).toHaveLength(1);
    stalled.drop();
    await eventually(noLeftovers);
    await eventually(() => receiver.openAssociations === 0);
  });
});
