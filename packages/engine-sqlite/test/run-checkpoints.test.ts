import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SEGMENT_CONTENT_TYPE } from '@arteria/protocol';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import type { ParkedStep } from '@arteria/ports';

const dir = mkdtempSync(join(tmpdir(), 'arteria-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const algorithm = { name: 'contrast-injection', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const first = { requestId: 'r1', next: 0, frames: 0, headerSha256: 'a'.repeat(64), segmentSha256s: [], algorithm, events: [], state: new Uint8Array([1, 2, 3]) };
const segment = (index: number, sha: string): ParkedStep => ({ phase: 'segment' as const, index, firstFrame: index * 4, frameCount: 4, object: { uri: `s3://runs/acme/dev1/1.2/s${index}`, size: 64, sha256: sha.repeat(64), contentType: SEGMENT_CONTENT_TYPE } });

// The promises the segmented-run worker relies on: one first checkpoint, each advance
// compare-and-set on the segments folded, the first parked step under a key stands,
// published counts only grow, and everything outlives the handle.
describe('SqliteRunCheckpoints', () => {
  it('creates once, advances compare-and-set, keeps the first parked step, and outlives its handle', { timeout: 120_000 }, async () => {
    const path = join(dir, 'a.db');
    const store = new SqliteRunCheckpoints({ path });
    expect(await store.create(first)).toBe(true);
    expect(await store.create({ ...first, state: new Uint8Array([9]) })).toBe(false);
    const second = { ...first, next: 1, frames: 4, segmentSha256s: ['b'.repeat(64)], events: [{ seq: 0, framesSeen: 4, event: { key: 'k', type: 't', frame: 2 } }], state: new Uint8Array(1 << 20).fill(7) };
    expect(await store.advance(0, second)).toBe(true);
    // A second delivery of the same segment: the store has moved on, its copy is dropped.
    expect(await store.advance(0, { ...second, state: new Uint8Array([0]) })).toBe(false);
    await store.markPublished('r1', 1);
    await store.markPublished('r1', 0);
    await store.park('r1', segment(3, 'c'));
    await store.park('r1', segment(3, 'e'));
    await store.park('r1', { phase: 'end', segments: 4, frames: 16, digest: 'f'.repeat(64) });
    await store.close();

    const reopened = new SqliteRunCheckpoints({ path });
    const read = await reopened.get('r1');
    expect(read).toMatchObject({ next: 1, frames: 4, published: 1, events: second.events, segmentSha256s: second.segmentSha256s });
    expect(read?.state).toEqual(second.state);
    expect(await reopened.parked('r1', 3)).toEqual(segment(3, 'c'));
    expect(await reopened.parked('r1', 'end')).toMatchObject({ phase: 'end', segments: 4 });
    expect(await reopened.parked('r1', 2)).toBeUndefined();
    await reopened.remove('r1');
    await reopened.remove('r1');
    expect(await reopened.get('r1')).toBeUndefined();
    expect(await reopened.parked('r1', 3)).toBeUndefined();
    await reopened.close();
    await reopened.close();
    await expect(reopened.get('r1')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  });
});
