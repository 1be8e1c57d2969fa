// The outbox's side of a complete file sent in segments that goes whole after all
// (NOT_INCREMENTAL): the mark survives a reopen, and the entry becomes a whole-file run in
// one transaction, once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Outbox, type OutboxTransition } from '@arteria/gateway';
import { newOutboxEntry } from './helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arteria-whole-fallback-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const open = (): Outbox => Outbox.open(join(dir, 'outbox.db'), { maxEntries: 10, keepFinishedEntries: 10 });
const segmentedRun = (entryId: string, wholeFile: boolean) => ({
  entryId,
  requestId: `run-${entryId}`,
  headerPath: join(dir, `${entryId}-header`),
  pixelOffset: 1000,
  frameBytes: 4096,
  plannedFrames: 90,
  framesPerSegment: 16,
  stableAfterMs: 10_000,
  endWhenStable: false,
  headerUri: `s3://b/acme/dev1/${entryId}/header`,
  headerSize: 1000,
  headerSha256: 'a'.repeat(64),
  openJson: '{}',
  wholeFile,
});

describe('a whole file sent in segments that goes whole after all', () => {
  it('keeps the fallback mark across a reopen, then becomes a pending whole-file run once, its segmented rows gone', () => {
    let outbox = open();
    outbox.add({ ...newOutboxEntry('w1'), kind: 'segmented' }, 1, segmentedRun('w1', true));
    outbox.add({ ...newOutboxEntry('s1'), kind: 'segmented' }, 1, segmentedRun('s1', false));
    outbox.segments.segmentCut('w1', { index: 0, firstFrame: 0, frameCount: 16, uri: 's3://b/acme/dev1/w1/s0', size: 65536, sha256: 'b'.repeat(64), acquired: 2 });
    expect(outbox.segments.get('w1')?.wholeFile).toBe(true);
    expect(outbox.segments.get('s1')?.wholeFile).toBe(false);
    outbox.segments.markFallback('w1', 3);
    outbox.close();

    outbox = open();
    try {
      expect(outbox.segments.fallingBack()).toEqual(['w1']);
      expect(outbox.streaming().map((e) => e.id)).toEqual(['w1', 's1']);
      const seen: OutboxTransition[] = [];
      outbox.subscribe((t) => seen.push(t));
      const entry = outbox.sendWhole('w1', { sourcePath: join(dir, 'w1.dcm'), spooled: true, objectKey: 'acme/dev1/1.2.3/w1.dcm' }, 4);
      expect(entry).toMatchObject({ kind: 'file', state: 'pending', spooled: true, objectKey: 'acme/dev1/1.2.3/w1.dcm', requestId: undefined, nextAttemptAt: 4 });
      expect(seen).toMatchObject([{ from: 'pending', to: 'pending', wholeFile: true }]);
      expect(outbox.segments.get('w1')).toBeUndefined();
      expect(outbox.segments.segments('w1')).toEqual([]);
      expect(outbox.segments.fallingBack()).toEqual([]);
      expect(outbox.nextPending(5, new Set())?.id).toBe('w1');
      // Once: a whole-file entry is not a segmented run any more.
      expect(outbox.sendWhole('w1', { sourcePath: 'x', spooled: false, objectKey: 'y' }, 5)).toBeUndefined();
      expect(seen).toHaveLength(1);
    } finally {
      outbox.close();
    }
  });
});
