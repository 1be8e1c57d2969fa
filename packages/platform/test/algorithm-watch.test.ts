import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_S3_CREDENTIALS } from '@arteria/engine-s3';
import { ArteriaError } from '@arteria/protocol';
import { startEmbeddedStore, tempDir, type RunningStore } from '@arteria/testing';
import { LiveRegistry } from '@arteria/worker';
import { AlgorithmStoreWatch } from '../src/cluster/algorithm-watch.js';
import { parseClusterConfig, type ClusterConfig } from '../src/cluster/cluster-config.js';
import { loadRoleAlgorithms } from '../src/cluster/role-algorithms.js';

/** The artifact store watch runs on the one Lifecycle, like every long-lived part. */
const POLL_MS = 50;
let store: RunningStore;
let folder: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  store = await startEmbeddedStore(['arteria-runs']);
  folder = await tempDir('watch');
});

afterAll(async () => {
  await store.close();
  await folder.remove();
});

function config(algorithms: { fromStore: boolean; storePollMs: number }): ClusterConfig {
  const { accessKeyId, secretAccessKey } = EMBEDDED_S3_CREDENTIALS;
  return parseClusterConfig({ dataDir: folder.dir, s3: { endpoint: store.store.endpoint, accessKeyId, secretAccessKey }, algorithms: { bundled: false, ...algorithms } });
}

async function startWatch(c: ClusterConfig, errors: Error[] = []): Promise<AlgorithmStoreWatch | undefined> {
  const loaded = await loadRoleAlgorithms(c, 'ingest', []);
  return AlgorithmStoreWatch.start(c, 'ingest', [], new LiveRegistry(loaded.registry), loaded, { onError: (err) => errors.push(err) });
}

describe('AlgorithmStoreWatch lifecycle', () => {
  it('starts only where the process reads the store and polls it', async () => {
    expect(await startWatch(config({ fromStore: false, storePollMs: POLL_MS }))).toBeUndefined();
    expect(await startWatch(config({ fromStore: true, storePollMs: 0 }))).toBeUndefined();
  });

  it('runs once started; closes once (concurrent closes share one outcome); after close a check is ILLEGAL_STATE and polling has stopped', async () => {
    const errors: Error[] = [];
    const watch = await startWatch(config({ fromStore: true, storePollMs: POLL_MS }), errors);
    if (watch === undefined) throw new ArteriaError('INTERNAL', 'the watch did not start');
    expect(watch.state).toBe('running');
    expect(await watch.check()).toBe(false); // the store has not changed since the load
    await sleep(POLL_MS * 3); // a few polls
    const first = watch.close();
    expect(watch.close()).toBe(first);
    expect(watch.state).toBe('closing');
    await first;
    expect(watch.state).toBe('closed');
    await expect(watch.check()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    await sleep(POLL_MS * 4);
    // No poll ran after close: a poll would have reported its ILLEGAL_STATE here.
    expect(errors).toEqual([]);
  });

  it('closes with await using', async () => {
    let scoped: AlgorithmStoreWatch | undefined;
    {
      await using watch = await startWatch(config({ fromStore: true, storePollMs: POLL_MS }));
      scoped = watch;
      expect(watch?.state).toBe('running');
    }
    expect(scoped?.state).toBe('closed');
    await expect(scoped?.check()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
  });

  it('reports a failed poll and keeps running; close waits for a check in progress, whose failure goes to its caller', async () => {
    const errors: Error[] = [];
    const own = await startEmbeddedStore(['arteria-runs']);
    try {
      const { accessKeyId, secretAccessKey } = EMBEDDED_S3_CREDENTIALS;
      const c = parseClusterConfig({ dataDir: folder.dir, s3: { endpoint: own.store.endpoint, accessKeyId, secretAccessKey }, algorithms: { bundled: false, fromStore: true, storePollMs: POLL_MS } });
      const watch = await startWatch(c, errors);
      if (watch === undefined) throw new ArteriaError('INTERNAL', 'the watch did not start');
      await own.store.close(); // the store goes away: every read fails
      await expect.poll(() => errors.length, { timeout: 20_000 }).toBeGreaterThan(0);
      expect(errors[0]).toBeInstanceOf(ArteriaError);
      expect(watch.state).toBe('running');
      const checking = watch.check();
      const closing = watch.close();
      await expect(checking).rejects.toBeInstanceOf(ArteriaError);
      await expect(closing).resolves.toBeUndefined();
      expect(watch.state).toBe('closed');
    } finally {
      await own.close();
    }
  });
});
