import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '@arteria/engine-mqtt';
import { deviceToken } from '@arteria/protocol';

const TENANTS = new Map([['demo', 'demo-tenant-secret-0123456789']]);

describe('embedded broker: a client that disconnects', () => {
  it('is a normal close, not a broker error (aedes destroys the connection\'s stream without an error; a Duplex.from pair reported that as an AbortError)', async () => {
    const errors: Error[] = [];
    const broker = new EmbeddedBroker();
    await broker.start({ host: '127.0.0.1', port: 0, secrets: { tenants: TENANTS, platform: 'platform-secret-0123456789' }, hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined, onError: (err) => errors.push(err) } });
    try {
      for (let i = 0; i < 3; i++) {
        const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'demo.deva', username: 'demo/deva', password: deviceToken(TENANTS.get('demo') ?? '', { tenant: 'demo', device: 'deva' }), reconnectPeriod: 0 });
        await client.publishAsync('arteria/v1/demo/deva/status', Buffer.from('{}'), { qos: 1 });
        await client.endAsync(); // sends DISCONNECT
      }
      await expect.poll(() => broker.connectedClients, { timeout: 20_000 }).toBe(0);
      await sleep(200);
      expect(errors.map((e) => `${e.name}: ${e.message}`)).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
