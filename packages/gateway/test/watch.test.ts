import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FolderWatcher, Gateway } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, smallRun, startServersWithResponder, type Responder, type Servers } from './helpers.js';

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

// Closes the responder, then the broker and store.
afterAll(async () => servers?.close());

describe('FolderWatcher', () => {
  it('sends new .dcm files and moves them to sent/ or failed/ with a report', async () => {
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-1'), { logger: memoryLogger() });
    await gateway.start();
    const folder = join(servers.directory, 'incoming');
    await mkdir(folder, { recursive: true });
    const watcher = new FolderWatcher(gateway, { folder, stableMs: 50, pollIntervalMs: 20, logger: memoryLogger() });
    await watcher.start();
    try {
      await writeFile(join(folder, 'run-a.dcm'), smallRun(201));
      await writeFile(join(folder, 'broken.dcm'), 'not a DICOM file');
      await writeFile(join(folder, 'readme.txt'), 'ignored: not a .dcm file');

      await vi.waitFor(
        async () => {
          expect((await readdir(watcher.sentFolder)).sort()).toEqual(['run-a.dcm', 'run-a.dcm.result.json']);
          expect((await readdir(watcher.failedFolder)).sort()).toEqual(['broken.dcm', 'broken.dcm.error.json']);
        },
        { timeout: 10_000, interval: 25 },
      );
      await watcher.idle();

      const result = JSON.parse(await readFile(join(watcher.sentFolder, 'run-a.dcm.result.json'), 'utf8')) as { requestId: string; status: string };
      expect(result.status).toBe('ok');
      expect(responder.requestsOf('watch-1').map((s) => s.request.id)).toEqual([result.requestId]);
      const error = JSON.parse(await readFile(join(watcher.failedFolder, 'broken.dcm.error.json'), 'utf8')) as { code: string; retryable: boolean };
      expect(error).toMatchObject({ code: 'INVALID_DICOM', retryable: false });
      expect((await readdir(folder)).sort()).toEqual(['failed', 'readme.txt', 'sent']);
    } finally {
      await watcher.close();
    }
  });

  it('leaves the responder without errors', () => {
    expect(responder.errors).toEqual([]);
  });
});
