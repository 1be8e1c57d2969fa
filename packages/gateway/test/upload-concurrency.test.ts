import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, smallRun, startServersWithResponder, type Responder, type Servers } from './helpers.js';
import { startStoreProxy } from './store-proxy.js';

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

afterAll(async () => servers?.close());

describe('small runs share the uplink', () => {
  it('uploads several one-part runs side by side instead of one after another', async () => {
    // A slow link: each small run takes well over a second to go up on its own.
    const proxy = await startStoreProxy(Number(new URL(servers.s3Endpoint).port), 16 * 1024);
    const device = 'upload-side-by-side';
    const base = gatewayOptions(servers, device);
    const gateway = new Gateway({ ...base, s3: { ...base.s3, endpoint: proxy.endpoint }, uploadConcurrency: 4 }, { logger: memoryLogger() });
    await gateway.start();
    try {
      const files = await Promise.all(
        [1, 2, 3, 4].map(async (n) => {
          const file = join(servers.directory, `side-by-side-${n}.dcm`);
          await writeFile(file, smallRun(900 + n));
          return file;
        }),
      );
      const sends = files.map((file) => gateway.send(file));
      const settled = Promise.allSettled(sends); // a failed expectation below still lets every send end
      // All four uploads are on the wire before the first of them has finished (nothing published yet).
      await vi.waitFor(() => expect(proxy.putRequests).toBe(4), { timeout: 20_000, interval: 10 });
      expect(responder.requestsOf(device)).toEqual([]);
      const results = await settled;
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value.status : String(r.reason)))).toEqual(['ok', 'ok', 'ok', 'ok']);
    } finally {
      await gateway.close();
      await proxy.close();
    }
  });
});
