import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway, type GatewayEvents } from '@arteria/gateway';
import { Responder, freePort, gatewayOptions, memoryLogger, smallRun, startBroker, startServers, withGrants, type Servers } from './helpers.js';

let servers: Servers;

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await servers?.close();
});

function next<K extends keyof GatewayEvents>(gateway: Gateway, event: K, match: (payload: GatewayEvents[K]) => boolean = () => true): Promise<GatewayEvents[K]> {
  return new Promise((resolve) => {
    const off = gateway.on(event, (payload) => {
      if (!match(payload)) return;
      off();
      resolve(payload);
    });
  });
}

describe('broker outages', () => {
  it('starts without a broker, keeps accepting runs and delivers them once the broker is up', async () => {
    const port = await freePort();
    await using gateway = new Gateway(gatewayOptions(servers, 'offline-1', { mqttUrl: `mqtt://127.0.0.1:${port}`, mqttReconnectPeriodMs: 50, mqttReconnectMaxMs: 200, resendIntervalMs: 200 }), {
      logger: memoryLogger(),
    });
    await gateway.start();
    expect(gateway.stats()).toMatchObject({ state: 'running', connected: false });

    const uploaded = next(gateway, 'entry', (e) => e.state === 'uploaded');
    const sending = gateway.send({ bytes: smallRun(401), name: 'run.dcm' });
    await uploaded;
    expect(gateway.stats()).toMatchObject({ published: 0, pending: 1 });

    const broker = await startBroker(port);
    const responder = await Responder.start({ mqttUrl: broker.url, s3: servers.s3 });
    try {
      const result = await sending;
      expect(result.status).toBe('ok');
      expect(responder.requestsOf('offline-1')[0]?.objectComplete).toBe(true);
      expect(gateway.stats().connected).toBe(true);
    } finally {
      await gateway.close();
      await responder.close();
      await broker.close();
    }
  });

  it('a run accepted while the broker is down (upload grants come over it) is not tried until the broker is back, then goes at once', async () => {
    const port = await freePort();
    // A backoff of two minutes: the run must not wait for it once the connection is ready.
    await using gateway = new Gateway(withGrants(gatewayOptions(servers, 'offline-3', { mqttUrl: `mqtt://127.0.0.1:${port}`, mqttReconnectPeriodMs: 50, mqttReconnectMaxMs: 200, resendIntervalMs: 120_000, maxRetryDelayMs: 120_000 })), {
      logger: memoryLogger(),
    });
    await gateway.start();
    const errors: string[] = [];
    gateway.on('error', (e) => errors.push(e.error.code));
    const sending = gateway.send({ bytes: smallRun(403), name: 'run.dcm' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(gateway.stats()).toMatchObject({ published: 0, pending: 1 });
    // No upload is tried while the broker is down: it could only fail, and log that it did.
    expect(errors).toEqual([]);

    const broker = await startBroker(port);
    const responder = await Responder.start({ mqttUrl: broker.url, s3: servers.s3 });
    try {
      let timer: NodeJS.Timeout | undefined;
      const backoff = new Promise<'still backing off'>((resolve) => (timer = setTimeout(() => resolve('still backing off'), 30_000)));
      const result = await Promise.race([sending, backoff]);
      clearTimeout(timer);
      expect(result).toMatchObject({ status: 'ok' });
      expect(responder.requestsOf('offline-3')[0]?.objectComplete).toBe(true);
    } finally {
      await gateway.close();
      await responder.close();
      await broker.close();
    }
  }, 60_000);

  it('reconnects after the broker restarts, resubscribes and resends what is unanswered', async () => {
    const first = await startBroker();
    const firstResponder = await Responder.start({ mqttUrl: first.url, s3: servers.s3 });
    await using gateway = new Gateway(gatewayOptions(servers, 'offline-2', { mqttUrl: first.url, mqttReconnectPeriodMs: 50, mqttReconnectMaxMs: 200, resendIntervalMs: 200 }), {
      logger: memoryLogger(),
    });
    await gateway.start();
    expect((await gateway.send({ bytes: smallRun(402), name: 'a.dcm' })).status).toBe('ok');

    const down = next(gateway, 'connection', (e) => e.state === 'down');
    await firstResponder.close();
    await first.close();
    await down;
    const uploaded = next(gateway, 'entry', (e) => e.state === 'uploaded');
    const sending = gateway.send({ bytes: smallRun(403), name: 'b.dcm' });
    await uploaded;

    // A new broker on the same port has no memory of the device's session.
    const second = await startBroker(first.port);
    const responder = await Responder.start({ mqttUrl: second.url, s3: servers.s3 });
    try {
      const result = await sending;
      expect(result.status).toBe('ok');
      expect(responder.requestsOf('offline-2').map((s) => s.request.id)).toContain(result.requestId);
      expect(responder.errors).toEqual([]);
    } finally {
      await gateway.close();
      await responder.close();
      await second.close();
    }
  });
});
