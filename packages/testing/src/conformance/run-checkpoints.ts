import { afterAll, describe, expect, it } from 'vitest';
import { SEGMENT_CONTENT_TYPE } from '@arteria/protocol';
import type { ParkedStep, RunCheckpoint, RunCheckpointStore } from '@arteria/ports';

/** Opens another handle on the same store (a second worker process, or the same one after a restart). */
export type CheckpointStoreOpener = () => Promise<RunCheckpointStore>;

const algorithm = { name: 'contrast-injection', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const firstOf = (requestId: string): Omit<RunCheckpoint, 'published'> => ({ requestId, next: 0, frames: 0, headerSha256: 'a'.repeat(64), segmentSha256s: [], algorithm, events: [], state: new Uint8Array([1, 2, 3]) });
const segment = (index: number, sha: string): ParkedStep => ({ phase: 'segment' as const, index, firstFrame: index * 4, frameCount: 4, object: { uri: `s3://runs/acme/dev1/1.2/s${index}`, size: 64, sha256: sha.repeat(64), contentType: SEGMENT_CONTENT_TYPE } });

/**
 * The promises the segmented-run worker relies on, whatever holds the checkpoints: one
 * first checkpoint per run, each advance compare-and-set on the segments folded (of two
 * writers racing from one checkpoint exactly one wins, from any handle), the first parked
 * step under a key stands, published counts only grow and survive advances, states of
 * any size come back byte for byte, everything outlives the handle, and remove forgets.
 */
export function runCheckpointStoreConformance(name: string, open: CheckpointStoreOpener): void {
  describe(`RunCheckpointStore conformance: ${name}`, () => {
    const handles: RunCheckpointStore[] = [];
    const handle = async (): Promise<RunCheckpointStore> => {
      const store = await open();
      handles.push(store);
      return store;
    };
    afterAll(async () => {
      await Promise.allSettled(handles.map((h) => h.close()));
    });

    it('creates once, advances compare-and-set, keeps the first parked step, and outlives its handle', { timeout: 120_000 }, async () => {
      const store = await handle();
      const first = firstOf('r1');
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

      const reopened = await handle();
      const read = await reopened.get('r1');
      expect(read).toMatchObject({ next: 1, frames: 4, published: 1, events: second.events, segmentSha256s: second.segmentSha256s });
      expect(read?.state).toEqual(second.state);
      expect(await reopened.parked('r1', 3)).toEqual(segment(3, 'c'));
      expect(await reopened.parked('r1', 'end')).toMatchObject({ phase: 'end', segments: 4 });
      expect(await reopened.parked('r1', 2)).toBeUndefined();
      // The published count is the store's: an advance written after it keeps it.
      expect(await reopened.advance(1, { ...second, next: 2, frames: 8, state: new Uint8Array([5]) })).toBe(true);
      expect(await reopened.get('r1')).toMatchObject({ next: 2, published: 1, state: new Uint8Array([5]) });
      await reopened.remove('r1');
      await reopened.remove('r1');
      expect(await reopened.get('r1')).toBeUndefined();
      expect(await reopened.parked('r1', 3)).toBeUndefined();
      await reopened.close();
      await reopened.close();
      await expect(reopened.get('r1')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    });

    it('lets exactly one of two handles advance from the same checkpoint, and one of two create', { timeout: 120_000 }, async () => {
      const [a, b] = [await handle(), await handle()];
      const first = firstOf('r2');
      const created = await Promise.all([a.create(first), b.create({ ...first, state: new Uint8Array([4]) })]);
      expect(created.filter(Boolean)).toHaveLength(1);
      for (let from = 0; from < 4; from++) {
        const base = (await a.get('r2'))!;
        // Each writer carries a state of its own, one large and one small: the winner's is what is read.
        const mine = (fill: number, size: number): Omit<RunCheckpoint, 'published'> => ({ ...base, next: from + 1, frames: base.frames + 4, segmentSha256s: [...base.segmentSha256s, String(fill).repeat(64)], state: new Uint8Array(size).fill(fill) });
        const ours = [mine(1, 600_000), mine(2, 16)];
        const won = await Promise.all([a.advance(from, ours[0]!), b.advance(from, ours[1]!)]);
        expect(won.filter(Boolean)).toHaveLength(1);
        const winner = ours[won.indexOf(true)]!;
        const read = (await b.get('r2'))!;
        expect(read.next).toBe(from + 1);
        expect(read.state).toEqual(winner.state);
        expect(read.segmentSha256s).toEqual(winner.segmentSha256s);
      }
      await Promise.all([a.markPublished('r2', 3), b.markPublished('r2', 2)]);
      expect((await a.get('r2'))?.published).toBe(3);
      await b.remove('r2');
      expect(await a.get('r2')).toBeUndefined();
    });
  });
}
