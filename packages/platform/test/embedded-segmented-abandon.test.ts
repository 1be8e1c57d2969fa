// A device abandons a segmented run it opened (RunAbandonV1) against the embedded
// platform: the run is answered RUN_ABANDONED once, its state is released (checkpoint,
// parked steps, the run held by the workers, its queued steps), a late step is refused
// typed, and nobody else can abandon it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { encodePayload, type RunAbandonV1 } from '@arteria/protocol';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatformWithDevice } from './support/platform.js';
import { SegmentedRun } from './support/segmented-run.js';

const CONTRAST_INJECTION = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));
const bucket = 'arteria-runs';
const layout = { rows: 64, columns: 64, frames: 90, bytesPerSample: 1 };
const run = synthesizeXaRun({ seed: 52, rows: 64, columns: 64, frames: 90, bitsStored: 8, contrast: { startFrame: 60, peakFrame: 75, endFrame: 88 } }).bytes;
const OTHER_SECRET = 'other-tenant-secret-0123456789';
const quietly = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const abandonOf = (r: SegmentedRun, from: { tenant: string; device: string } = r.device): RunAbandonV1 => ({
  v: 1,
  kind: 'run-abandon',
  requestId: r.id,
  tenant: from.tenant,
  device: from.device,
  reason: { code: 'RUN_INCOMPLETE', message: 'the source stopped growing' },
  at: Date.now(),
});

describe('embedded platform: a segmented run abandoned by its device', () => {
  let platform: Awaited<ReturnType<typeof startPlatformWithDevice>>;
  let checkpoints: SqliteRunCheckpoints;
  let neighbour: TestDevice;
  let stranger: TestDevice;
  let uid = 0;
  const segmented = (): SegmentedRun => new SegmentedRun(platform.device, bucket, run, layout, 'contrast-injection@^1', `1.2.826.0.1.3680043.10.13.${++uid}`, 10);
  const resultsFor = (device: TestDevice, id: string) => device.results.filter((x) => x.requestId === id);

  beforeAll(async () => {
    platform = await startPlatformWithDevice('segmented-abandon', (tmp) => ({
      dataDir: path.join(tmp, 'data'),
      overrides: { algorithmDirs: [fixtureAlgorithm('echo'), CONTRAST_INJECTION], tenants: { acme: SECRET, other: OTHER_SECRET }, visibilityMs: 3_000 },
    }));
    checkpoints = new SqliteRunCheckpoints({ path: path.join(platform.dir, 'data', 'platform.db') });
    neighbour = await TestDevice.connect(platform.platform.mqttUrl, SECRET, 'acme', 'cath-lab-2');
    stranger = await TestDevice.connect(platform.platform.mqttUrl, OTHER_SECRET, 'other', 'cath-lab-1');
  });
  afterAll(async () => {
    await neighbour.close();
    await stranger.close();
    await checkpoints.close();
    await platform.close();
  });

  /** A run opened with segments 0-3 sent and segment 6 parked ahead of the gap. */
  async function openedWithGap(): Promise<SegmentedRun> {
    const r = segmented();
    await r.upload(platform.s3);
    await r.send(r.open);
    for (const segment of r.segments.slice(0, 4)) await r.send(segment);
    await r.send(r.segments[6]!); // ahead of a gap: parked, not folded
    await vi.waitFor(async () => expect(await checkpoints.parked(r.id, 6)).toBeDefined(), { timeout: 20_000, interval: 50 });
    return r;
  }

  it('answers RUN_ABANDONED once, releases the run, ignores a second abandon and refuses a late segment and end typed', { timeout: 60_000 }, async () => {
    const r = await openedWithGap();
    await vi.waitFor(async () => expect(await checkpoints.get(r.id)).toBeDefined(), { timeout: 20_000, interval: 50 });
    await vi.waitFor(() => expect(platform.platform.segmentedRunsInHand).toBe(1), { timeout: 20_000, interval: 50 });

    await platform.device.publishRaw(encodePayload(abandonOf(r)));
    const answer = await platform.device.next((x) => x.requestId === r.id);
    expect(answer).toMatchObject({ status: 'failed', error: { code: 'RUN_ABANDONED' } });
    expect(answer.error?.message).toContain('RUN_INCOMPLETE');
    const recorded = await platform.platform.ledger.get(r.id);
    expect(recorded).toMatchObject({ state: 'completed', result: { error: { code: 'RUN_ABANDONED' } } });
    expect(recorded?.publishedAt).toBeDefined();

    // Released: checkpoint and parked steps gone, the run no longer held by the workers, its queued steps settled.
    await vi.waitFor(async () => expect(await checkpoints.get(r.id)).toBeUndefined(), { timeout: 10_000, interval: 50 });
    expect(await checkpoints.parked(r.id, 6)).toBeUndefined();
    await vi.waitFor(() => expect(platform.platform.segmentedRunsInHand).toBe(0), { timeout: 10_000, interval: 50 });
    // A step another worker process was folding meanwhile parks after that first look: the abandon step's second look, a lease later, removes it.
    const { v: _v, kind: _kind, requestId: _id, tenant: _tenant, device: _device, ...straggler } = r.segments[5]!;
    await checkpoints.park(r.id, { phase: 'segment', ...straggler });
    expect(await checkpoints.parked(r.id, 5)).toBeDefined();
    await vi.waitFor(async () => expect(await checkpoints.parked(r.id, 5)).toBeUndefined(), { timeout: 10_000, interval: 100 });
    const stepIds = [r.id, ...[0, 1, 2, 3, 6].map((i) => `${r.id}.s${i}`), `${r.id}.abandon`];
    await vi.waitFor(async () => expect(await Promise.all(stepIds.map((id) => platform.platform.queue.pending(id)))).toEqual(stepIds.map(() => false)), { timeout: 20_000, interval: 100 });

    // A second abandon changes nothing and is not answered again (the answer is on its way).
    await platform.device.publishRaw(encodePayload(abandonOf(r)));
    await quietly(1_000);
    expect(resultsFor(platform.device, r.id)).toHaveLength(1);

    // A segment, and the end, after the abandon: refused RUN_ABANDONED, unrecorded, nothing parked again.
    await r.send(r.segments[4]!);
    const late = await platform.device.next((x) => x.requestId === r.id && x.status === 'rejected');
    expect(late.error).toMatchObject({ code: 'RUN_ABANDONED' });
    expect(late.error?.message).toContain('segment 4');
    await r.send(r.end);
    await vi.waitFor(() => expect(resultsFor(platform.device, r.id).filter((x) => x.status === 'rejected')).toHaveLength(2), { timeout: 10_000, interval: 50 });
    expect(resultsFor(platform.device, r.id).filter((x) => x.error?.code === 'RUN_ABANDONED' && x.status === 'failed')).toHaveLength(1);
    expect(await checkpoints.parked(r.id, 4)).toBeUndefined();
    expect(await checkpoints.get(r.id)).toBeUndefined();
    expect((await platform.platform.ledger.get(r.id))?.result?.recordHash).toBe(recorded?.result?.recordHash);
  });

  it('refuses another device or tenant NOT_AUTHORIZED, changing nothing: the run still completes for its own device', { timeout: 60_000 }, async () => {
    const r = segmented();
    await r.upload(platform.s3);
    await r.send(r.open);
    for (const segment of r.segments) await r.send(segment);
    await vi.waitFor(async () => expect(await checkpoints.get(r.id)).toBeDefined(), { timeout: 20_000, interval: 50 });
    // Another device of the tenant, naming itself; one of another tenant; and one naming the run's device.
    await neighbour.publishRaw(encodePayload(abandonOf(r, neighbour)));
    await stranger.publishRaw(encodePayload(abandonOf(r, stranger)));
    await neighbour.publishRaw(encodePayload(abandonOf(r)));
    await vi.waitFor(() => expect(resultsFor(neighbour, r.id)).toHaveLength(2), { timeout: 10_000, interval: 50 });
    await vi.waitFor(() => expect(resultsFor(stranger, r.id)).toHaveLength(1), { timeout: 10_000, interval: 50 });
    for (const refusal of [...resultsFor(neighbour, r.id), ...resultsFor(stranger, r.id)]) expect(refusal).toMatchObject({ status: 'rejected', error: { code: 'NOT_AUTHORIZED' } });
    expect(await platform.platform.ledger.get(r.id)).toMatchObject({ state: 'accepted' });

    await r.send(r.end);
    const result = await platform.device.next((x) => x.requestId === r.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(resultsFor(platform.device, r.id)).toHaveLength(1);
    await vi.waitFor(async () => expect(await checkpoints.get(r.id)).toBeUndefined(), { timeout: 10_000, interval: 50 });

    // Abandoning it now, once it has its result: nothing changes, nothing new is published within the resend window.
    await platform.device.publishRaw(encodePayload(abandonOf(r)));
    await quietly(1_000);
    expect(resultsFor(platform.device, r.id)).toHaveLength(1);
    expect(await platform.platform.ledger.get(r.id)).toMatchObject({ state: 'completed', result: { status: 'ok' } });
  });

  it('releases a run that a refused step ended (a segment outside the prefix): its checkpoint and parked steps go, its result is published once', { timeout: 60_000 }, async () => {
    const r = await openedWithGap();
    await vi.waitFor(async () => expect((await checkpoints.get(r.id))?.next).toBe(4), { timeout: 20_000, interval: 50 });

    // Segment 4 naming another device's object: refused NOT_AUTHORIZED, which ends the run.
    const outside = { ...r.segments[4]!, object: { ...r.segments[4]!.object, uri: r.segments[4]!.object.uri.replace(`/${r.device.device}/`, '/cath-lab-2/') } };
    await r.send(outside);
    const answer = await platform.device.next((x) => x.requestId === r.id);
    expect(answer).toMatchObject({ status: 'rejected', error: { code: 'NOT_AUTHORIZED' } });
    expect(await platform.platform.ledger.get(r.id)).toMatchObject({ state: 'completed', result: { error: { code: 'NOT_AUTHORIZED' } } });

    // Nothing of the run stays on the platform once its result is recorded.
    await vi.waitFor(async () => expect(await checkpoints.get(r.id)).toBeUndefined(), { timeout: 15_000, interval: 100 });
    await vi.waitFor(async () => expect(await checkpoints.parked(r.id, 6)).toBeUndefined(), { timeout: 15_000, interval: 100 });
    await vi.waitFor(() => expect(platform.platform.segmentedRunsInHand).toBe(0), { timeout: 15_000, interval: 50 });
    await quietly(500);
    expect(resultsFor(platform.device, r.id)).toHaveLength(1);
  });

  it('answers an abandon of a run it never opened RUN_NOT_OPEN, and a malformed one INVALID_REQUEST, unrecorded', { timeout: 30_000 }, async () => {
    const never = segmented();
    await platform.device.publishRaw(encodePayload(abandonOf(never)));
    expect(await platform.device.next((x) => x.requestId === never.id)).toMatchObject({ status: 'rejected', error: { code: 'RUN_NOT_OPEN' } });
    expect(await platform.platform.ledger.get(never.id)).toBeUndefined();

    const { reason: _reason, ...noReason } = abandonOf(never);
    await platform.device.publishRaw(JSON.stringify(noReason));
    const malformed = await platform.device.next((x) => x.requestId === never.id && x.error?.code === 'INVALID_REQUEST');
    expect(malformed.error?.message).toContain('reason');
  });
});
