import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway, backoffCeilingMs, type GatewayEvents } from '@arteria/gateway';
import { freePort } from '@arteria/testing';
import { gatewayOptions, memoryLogger, startAnonymousMosquitto, startServers, stopProcess, type Servers } from './helpers.js';

function next<K extends keyof GatewayEvents>(gateway: Gateway, event: K, match: (payload: GatewayEvents[K]) => boolean): Promise<GatewayEvents[K]> {
  return new Promise((resolve) => {
    const off = gateway.on(event, (payload) => {
      if (!match(payload)) return;
      off();
      resolve(payload);
    });
  });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const limit = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > limit) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('reconnecting to a restarted Mosquitto with jittered exponential backoff', () => {
  let servers: Servers;
  let dir: string;
  let port: number;
  let mosquitto: ChildProcess | undefined;

  beforeAll(async () => {
    servers = await startServers();
    dir = await mkdtemp(join(tmpdir(), 'arteria-backoff-'));
    port = await freePort();
    mosquitto = await startAnonymousMosquitto(dir, port);
  }, 30_000);

  afterAll(async () => {
    await stopProcess(mosquitto);
    await servers?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('waits a growing, jittered delay between attempts while the broker is down, and is ready again once it is back', async () => {
    const settings = { initialMs: 100, maxMs: 800 };
    const logger = memoryLogger();
    await using gateway = new Gateway(gatewayOptions(servers, 'backoff-1', { mqttUrl: `mqtt://127.0.0.1:${port}`, mqttReconnectPeriodMs: settings.initialMs, mqttReconnectMaxMs: settings.maxMs }), { logger });
    await gateway.start();
    expect(gateway.stats().connected).toBe(true);

    const down = next(gateway, 'connection', (e) => e.state === 'down');
    await stopProcess(mosquitto);
    await down;
    // Refused attempts against the stopped broker, each one logged with its delay.
    const attempts = (): { attempt: number; delayMs: number }[] =>
      logger.lines.filter((l) => l.message === 'MQTT reconnecting').map((l) => ({ attempt: Number(l.fields?.attempt), delayMs: Number(l.fields?.delayMs) }));
    await until(() => attempts().length >= 5, 'five refused reconnect attempts');

    const ready = next(gateway, 'connection', (e) => e.state === 'ready');
    mosquitto = await startAnonymousMosquitto(dir, port);
    await ready;
    expect(gateway.stats().connected).toBe(true);

    const lost = logger.lines.find((l) => l.message === 'MQTT connection lost; reconnecting');
    expect(Number(lost?.fields?.delayMs)).toBeLessThanOrEqual(settings.initialMs);
    const seen = attempts();
    // Attempt n (the n-th delay after the loss) waited at most its ceiling, never more than the cap.
    seen.forEach(({ attempt, delayMs }, i) => {
      expect(attempt).toBe(i + 2);
      expect(delayMs).toBeGreaterThanOrEqual(0);
      expect(delayMs).toBeLessThanOrEqual(backoffCeilingMs(attempt - 1, settings));
    });
    expect(Math.max(...seen.map((s) => s.delayMs))).toBeLessThanOrEqual(settings.maxMs);
  }, 60_000);
});
