// The embedded platform (`arteria up`) SIGKILLed while a worker folds a segment of a run
// sent while acquired: the next start on the same data folder takes over from the run's
// checkpoint in its SQLite file. One final result, each partial result once.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { createS3Client } from '@arteria/engine-s3';
import { runAlgorithmOnDicom, type Algorithm } from '@arteria/sdk';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';
import { SegmentedRun } from './support/segmented-run.js';

const TALLY = fixtureAlgorithm('tally');
const BUCKET = 'arteria-runs';

describe('embedded platform killed mid-run', () => {
  it('a platform process SIGKILLed while it folds a segment: the next start carries on from the checkpoint, one result, each partial once', { timeout: 240_000 }, async () => {
    const tmp = await tempDir('segmented-kill');
    // A lease of the killed process passes on 3 s after it was taken.
    const more = { visibilityMs: 3_000 };
    const child = fork(fileURLToPath(new URL('./fixtures/platform-process.mjs', import.meta.url)), [tmp.dir, TALLY, '1', JSON.stringify(more)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const checkpoints = new SqliteRunCheckpoints({ path: path.join(tmp.dir, 'platform.db') });
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const endpoints = JSON.parse(line.toString()) as { mqttUrl: string; s3Endpoint: string; storeCredentials: { accessKeyId: string; secretAccessKey: string; region: string } };
      const s3 = createS3Client({ endpoint: endpoints.s3Endpoint, ...endpoints.storeCredentials, forcePathStyle: true });
      let device = await TestDevice.connect(endpoints.mqttUrl, SECRET, 'acme', 'cath-lab-1');
      const frames = 6 * 4;
      const bytes = synthesizeXaRun({ seed: 71, rows: 32, columns: 32, frames, bitsStored: 8 }).bytes;
      const layout = { rows: 32, columns: 32, frames, bytesPerSample: 1 };
      const uid = '1.2.826.0.1.3680043.10.14.1';
      let run = new SegmentedRun(device, BUCKET, bytes, layout, 'tally@^1', uid, 4);
      await run.upload(s3);
      s3.destroy();
      await run.send(run.open);
      for (const segment of run.segments.slice(0, 3)) await run.send(segment);
      await vi.waitFor(async () => expect((await checkpoints.get(run.id))?.next).toBe(3), { timeout: 60_000, interval: 100 });
      await vi.waitFor(() => expect(device.partials).toHaveLength(3), { timeout: 30_000, interval: 50 });
      const before = device.partials.map((p) => p.seq);
      // Segment 3 parked: the worker holds its lease and is inside the 1.5 s fold. Kill the process there.
      await run.send(run.segments[3]!);
      await vi.waitFor(async () => expect(await checkpoints.parked(run.id, 3)).toBeDefined(), { timeout: 30_000, interval: 20 });
      child.kill('SIGKILL');
      await once(child, 'exit');
      await device.client.endAsync(true);
      expect((await checkpoints.get(run.id))?.next).toBe(3);

      const { platform, s3: s3b } = await startPlatform(tmp.dir, { algorithmDirs: [TALLY], ...more });
      try {
        device = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
        run = new SegmentedRun(device, BUCKET, bytes, layout, 'tally@^1', uid, 4);
        for (const segment of run.segments.slice(4)) await run.send(segment);
        await run.send(run.end);
        const result = await device.next((r) => r.requestId === run.id);
        const { default: tally } = (await import(path.join(TALLY, 'lib/index.js'))) as { default: Algorithm };
        expect(result.status, JSON.stringify(result.error)).toBe('ok');
        expect(result.output).toEqual(await runAlgorithmOnDicom(tally, bytes));
        // Settled: the killed process's lease came back and was answered from the checkpoint.
        // Left queued: only the run's idle look, due a run idle time after its open (it finds the run answered).
        await vi.waitFor(async () => expect(await platform.queue.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 1 }), { timeout: 60_000, interval: 200 });
        expect(await platform.queue.pending(`${run.id}.expire.0`)).toBe(true);
        expect(await checkpoints.get(run.id)).toBeUndefined();
        expect(device.results.filter((r) => r.requestId === run.id)).toHaveLength(1);
        expect(before).toEqual([0, 1, 2]);
        expect(device.partials.map((p) => [p.seq, p.event.key])).toEqual([3, 4, 5].map((seq) => [seq, `segment-${seq * 4}`]));
        await device.close();
      } finally {
        s3b.destroy();
        await platform.close();
      }
    } finally {
      child.kill('SIGKILL');
      await checkpoints.close();
      await tmp.remove();
    }
  });
});
