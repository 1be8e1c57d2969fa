import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { ResultDelivery } from '@arteria/gateway-site';
import { freePort, memoryLogger, startServersWithResponder, type Servers, phiRun } from '@arteria/testing';
import { gatewayOptions } from './support.js';

const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.77';

let servers: Servers;
let webhook: Server;
let webhookUrl: string;
/** Request ids as the webhook received them, one entry per POST. */
const posted: string[] = [];

beforeAll(async () => {
  ({ servers } = await startServersWithResponder());
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      posted.push((JSON.parse(body) as { result: { requestId: string } }).result.requestId);
      res.end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/results`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => webhook?.close(() => resolve()));
  await servers?.close();
});

describe('on-site delivery with one channel failing and the redelivery sweep running flat out', () => {
  it('posts each result to the webhook once, however the sweep and the first delivery interleave', async () => {
    const device = 'delivery-once-1';
    // Nothing listens on this port: every MQTT publish fails at once, so each delivery
    // ends in an error and the sweep keeps picking the results up again.
    const options = { folder: join(servers.directory, 'reports-once'), webhookUrl, mqtt: { url: `mqtt://127.0.0.1:${await freePort()}`, topicPrefix: 'site/once', publishTimeoutMs: 200 }, attempts: 2, retryDelayMs: 1, redeliverIntervalMs: 1 };
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, device, { deidentification: { enabled: true } }), { logger });
    const delivery = new ResultDelivery(gateway, options, logger);
    let failures = 0;
    delivery.onError(() => (failures += 1));
    await gateway.start();
    await delivery.start();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 8; i += 1) {
        const file = join(servers.directory, `once-${i}.dcm`);
        await writeFile(file, phiRun({ seed: 60 + i, studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.${i}`, sopInstanceUid: `${STUDY}.${i}.1` }));
        ids.push((await gateway.send(file)).requestId);
      }
      await vi.waitFor(() => expect(new Set(posted)).toEqual(new Set(ids)), { timeout: 30_000, interval: 20 });
      // Let the sweep go round many more times while MQTT keeps failing.
      const seen = failures;
      await vi.waitFor(() => expect(failures).toBeGreaterThan(seen + 40), { timeout: 30_000, interval: 20 });
      await sleep(50);
      expect(posted.length).toBe(ids.length);
    } finally {
      await delivery.close();
      await gateway.close();
    }
  });
});
