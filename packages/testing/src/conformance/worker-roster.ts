import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROSTER_STALE_AFTER_MS, rosterCounts, type WorkerHeartbeat, type WorkerRoster } from '@arteria/ports';

/** Opens a second connection to the same roster (another process of the cluster). */
export type RosterOpener = () => Promise<WorkerRoster>;

/**
 * The contract every `WorkerRoster` keeps: what one process writes, another reads; a
 * heartbeat replaces the worker's previous one; a worker that leaves is gone at once, one
 * that stops beating once its heartbeat is older than the stale age; the desired count is
 * one per pool, the latest; a closed handle refuses every call with ILLEGAL_STATE and closes
 * once however often it is asked to.
 */
export function workerRosterConformance(name: string, open: RosterOpener): void {
  describe(`WorkerRoster conformance: ${name}`, () => {
    let writer: WorkerRoster;
    let reader: WorkerRoster;
    beforeAll(async () => {
      writer = await open();
      reader = await open();
    }, 30_000);
    afterAll(async () => {
      await writer?.close();
      await reader?.close();
    });

    const beat = (instanceId: string, at: number, more: Partial<WorkerHeartbeat> = {}): WorkerHeartbeat => ({ instanceId, pool: 'cpu', state: 'running', concurrency: 2, busy: 0, at, ...more });

    it('reads from another connection what one wrote; a heartbeat replaces the last; leave removes it', async () => {
      const now = Date.now();
      await writer.beat(beat('w-a', now - 10));
      await writer.beat(beat('w-b', now - 10, { pool: 'gpu', concurrency: 1 }));
      await writer.beat(beat('w-a', now, { busy: 2, state: 'draining' }));
      let view = await reader.read(now);
      expect(view.workers.map((w) => [w.instanceId, w.pool, w.state, w.busy])).toEqual([
        ['w-a', 'cpu', 'draining', 2],
        ['w-b', 'gpu', 'running', 0],
      ]);
      // Only running workers count as actual (the draining one leases no more).
      expect(rosterCounts(view)).toMatchObject({ actual: 1, slots: 1, busy: 2, desired: null });
      await writer.leave('w-a');
      await writer.leave('w-b');
      view = await reader.read(now);
      expect(view.workers).toEqual([]);
    });

    it('keeps one desired count per pool, the latest, and sums the pools', async () => {
      const now = Date.now();
      await writer.recordDesired({ pool: 'cpu', desired: 3, instanceId: 'autoscaler-0', at: now - 5 });
      await writer.recordDesired({ pool: 'cpu', desired: 5, instanceId: 'autoscaler-0', at: now });
      await writer.recordDesired({ pool: 'gpu', desired: 1, instanceId: 'autoscaler-0', at: now });
      const view = await reader.read(now);
      expect(view.desired.map((d) => [d.pool, d.desired])).toEqual([
        ['cpu', 5],
        ['gpu', 1],
      ]);
      expect(rosterCounts(view).desired).toBe(6);
    });

    it('drops a worker whose heartbeat is older than the stale age (it died without a goodbye)', async () => {
      const now = Date.now();
      await writer.beat(beat('w-dead', now - ROSTER_STALE_AFTER_MS - 1));
      await writer.beat(beat('w-live', now));
      expect((await reader.read(now)).workers.map((w) => w.instanceId)).toEqual(['w-live']);
      await writer.leave('w-live');
    });

    it('refuses a malformed heartbeat (INTERNAL: a bug of the writer)', async () => {
      await expect(writer.beat({ ...beat('w-bad', Date.now()), busy: -1 })).rejects.toMatchObject({ code: 'INTERNAL' });
      expect((await reader.read()).workers.map((w) => w.instanceId)).not.toContain('w-bad');
    });

    it('closes once; a closed handle refuses every call with ILLEGAL_STATE; the roster outlives it', async () => {
      const handle = await open();
      await handle.beat(beat('w-closing', Date.now()));
      await Promise.all([handle.close(), handle.close()]);
      await handle.close();
      for (const call of [() => handle.beat(beat('w-closing', Date.now())), () => handle.leave('w-closing'), () => handle.read(), () => handle.recordDesired({ pool: 'cpu', desired: 1, instanceId: 'autoscaler-0', at: Date.now() })]) {
        await expect(call()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      }
      expect((await reader.read()).workers.map((w) => w.instanceId)).toContain('w-closing');
      await writer.leave('w-closing');
    });
  });
}
