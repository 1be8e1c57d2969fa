import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { createS3Client } from '@arteria/engine-s3';
import { encodePayload } from '@arteria/protocol';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

describe('no loss', () => {
  it('every acknowledged request is answered after the platform process is SIGKILLed', async () => {
    const tmp = await tempDir('no-loss');
    const child = fork(fileURLToPath(new URL('./fixtures/platform-process.mjs', import.meta.url)), [tmp.dir, fixtureAlgorithm('echo'), '0'], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const endpoints = JSON.parse(line.toString()) as { mqttUrl: string; s3Endpoint: string; storeCredentials: { accessKeyId: string; secretAccessKey: string; region: string } };
      const s3 = createS3Client({ endpoint: endpoints.s3Endpoint, ...endpoints.storeCredentials, forcePathStyle: true });
      const device = await TestDevice.connect(endpoints.mqttUrl, SECRET, 'acme', 'cath-lab-1');
      const ids: string[] = [];
      for (let i = 0; i < 20; i += 1) {
        const run = synthesizeXaRun({ seed: 100 + i, rows: 32, columns: 32, frames: 4, bitsStored: 8 });
        const request = await device.prepare(s3, 'arteria-runs', run.bytes, 'echo@^1', `1.2.3.${i}`);
        await device.publishRaw(encodePayload(request)); // resolves on PUBACK: durably enqueued
        ids.push(request.id);
      }
      // No worker ran: the platform dies holding 20 acknowledged requests.
      child.kill('SIGKILL');
      await once(child, 'exit');
      await device.client.endAsync(true);
      s3.destroy();

      const { platform, s3: s3b } = await startPlatform(tmp.dir, { workers: 0 });
      try {
        const again = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
        platform.pool.resize(2); // after the device listens: this test is about the queue, not the session
        const results = await Promise.all(ids.map((id) => again.next((r) => r.requestId === id)));
        expect(results.map((r) => r.status)).toEqual(ids.map(() => 'ok'));
        expect((await platform.ledger.counts()).ok).toBe(20);
        await again.close();
      } finally {
        s3b.destroy();
        await platform.close();
      }
    } finally {
      child.kill('SIGKILL');
      await tmp.remove();
    }
  });
});
