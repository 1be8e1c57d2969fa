import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '@arteria/engine-mqtt';
import { deviceToken } from '@arteria/protocol';

const TENANTS = new Map([['demo', 'demo-tenant-secret-0123456789']]);

describe('embedded broker: its URL', () => {
  it('names the host it was told to listen on, and a device reaches the broker there', async () => {
    const broker = new EmbeddedBroker();
    // Another loopback address than 127.0.0.1: a URL naming 127.0.0.1 would find nothing listening.
    await broker.start({ host: '127.0.0.2', port: 0, secrets: { tenants: TENANTS, platform: 'platform-secret-0123456789' }, hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined } });
    try {
      expect(new URL(broker.url).hostname).toBe('127.0.0.2');
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'demo.deva', username: 'demo/deva', password: deviceToken(TENANTS.get('demo') ?? '', { tenant: 'demo', device: 'deva' }), reconnectPeriod: 0, connectTimeout: 5_000 });
      await client.endAsync();
    } finally {
      await broker.close();
    }
  });
});
