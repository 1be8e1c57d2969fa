// A segmented run its device neither ends nor abandons (RUN_EXPIRED) against the embedded
// platform: after the run idle time with no segment folded, the run is answered once and
// released (checkpoint, parked steps, the run held by the workers); a run whose segments
// keep coming for longer than that is not.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { fixtureAlgorithm, startPlatformWithDevice } from './support/platform.js';
import { SegmentedRun } from './support/segmented-run.js';

const CONTRAST_INJECTION = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));
const bucket = 'arteria-runs';
const layout = { rows: 64, columns: 64, frames: 90, bytesPerSample: 1 };
const run = synthesizeXaRun({ seed: 53, rows: 64, columns: 64, frames: 90, bitsStored: 8, contrast: { startFrame: 60, peakFrame: 75, endFrame: 88 } }).bytes;
// 4 s: the idle time counts from the last fold, so a busy machine slow to fold (or to wake the
// test's sleeps) could expire the run that keeps its segments coming with 1.5 s, and the first
// test's look at its parked checkpoint could come after it had already expired.
const IDLE_MS = 4_000;
const quietly = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('embedded platform: a segmented run left open by its device', () => {
  let platform: Awaited<ReturnType<typeof startPlatformWithDevice>>;
  let checkpoints: SqliteRunCheckpoints;
  let uid = 0;
  const segmented = (): SegmentedRun => new SegmentedRun(platform.device, bucket, run, layout, 'contrast-injection@^1', `1.2.826.0.1.3680043.10.14.${++uid}`, 10);
  const resultsFor = (id: string) => platform.device.results.filter((x) => x.requestId === id);

  beforeAll(async () => {
    platform = await startPlatformWithDevice('segmented-expire', (tmp) => ({
      dataDir: path.join(tmp, 'data'),
      overrides: { algorithmDirs: [fixtureAlgorithm('echo'), CONTRAST_INJECTION], visibilityMs: 3_000, segmentedRunIdleMs: IDLE_MS },
    }));
    checkpoints = new SqliteRunCheckpoints({ path: path.join(platform.dir, 'data', 'platform.db') });
  });
  afterAll(async () => {
    await checkpoints.close();
    await platform.close();
  });

  it('answers a run with no segment folded for the idle time RUN_EXPIRED once, and releases it', { timeout: 60_000 }, async () => {
    const r = segmented();
    await r.upload(platform.s3);
    await r.send(r.open);
    for (const segment of r.segments.slice(0, 3)) await r.send(segment);
    await r.send(r.segments[5]!); // after a gap that never fills: parked, not folded
    await vi.waitFor(async () => expect((await checkpoints.get(r.id))?.next).toBe(3), { timeout: 20_000, interval: 50 });

    const answer = await platform.device.next((x) => x.requestId === r.id);
    expect(answer).toMatchObject({ status: 'failed', error: { code: 'RUN_EXPIRED' } });
    expect(await platform.platform.ledger.get(r.id)).toMatchObject({ state: 'completed', result: { error: { code: 'RUN_EXPIRED' } } });
    await vi.waitFor(async () => expect(await checkpoints.get(r.id)).toBeUndefined(), { timeout: 10_000, interval: 50 });
    expect(await checkpoints.parked(r.id, 5)).toBeUndefined();
    await vi.waitFor(() => expect(platform.platform.segmentedRunsInHand).toBe(0), { timeout: 10_000, interval: 50 });

    // A step after it changes nothing: the run has its answer.
    await r.send(r.segments[3]!);
    await r.send(r.end);
    await quietly(1_000);
    expect(resultsFor(r.id)).toHaveLength(1);
  });

  it('does not expire a run whose segments keep coming for longer than the idle time', { timeout: 60_000 }, async () => {
    const r = segmented();
    await r.upload(platform.s3);
    await r.send(r.open);
    // 9 segments, one every 1.6 s: 14.4 s, more than three idle times, never one idle time without a segment.
    for (const segment of r.segments) {
      await r.send(segment);
      await quietly(IDLE_MS * 0.4);
    }
    await r.send(r.end);
    const result = await platform.device.next((x) => x.requestId === r.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    await quietly(IDLE_MS * 1.5);
    expect(resultsFor(r.id)).toHaveLength(1);
    expect(await checkpoints.get(r.id)).toBeUndefined();
  });
});
