import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerDeviceToken, disableDevicesOnBroker, enableDevicesOnBroker, renderDynsecConfig, renderPasswordFile, type BrokerDevice } from '@arteria/engine-mqtt';
import { deviceClientId, deviceUsername, type DeviceAddress } from '@arteria/protocol';
import { attempt, startMosquitto, type RunningMosquitto } from '@arteria/testing';

const TENANTS = new Map([['demo', 'demo-tenant-secret-0123456789']]);
const PLATFORM_SECRET = 'platform-secret-0123456789';
const HOUR = 3_600_000;
const now = Date.now();
const LOST: BrokerDevice = { tenant: 'demo', device: 'lost', generation: 0, issuedAt: now, expiresAt: now + HOUR };
const KEPT: BrokerDevice = { tenant: 'demo', device: 'kept', generation: 0, issuedAt: now, expiresAt: now + HOUR };
const EXPIRED: BrokerDevice = { tenant: 'demo', device: 'old', generation: 2, issuedAt: now - 2 * HOUR, expiresAt: now - HOUR };

const token = (device: BrokerDevice): string => brokerDeviceToken(TENANTS.get(device.tenant) ?? '', device);

describe('Mosquitto: one device revoked through dynamic security, expiring tokens in the password file', () => {
  let dir: string;
  let broker: RunningMosquitto;
  let url: string;
  const login = (device: BrokerDevice): ReturnType<typeof attempt> => attempt(url, { clientId: deviceClientId(device), clean: true, username: deviceUsername(device), password: token(device) });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mosquitto-revoke-'));
    broker = await startMosquitto(dir, { platformSecret: PLATFORM_SECRET, tenants: TENANTS, devices: [LOST, KEPT, EXPIRED] });
    url = `mqtt://127.0.0.1:${broker.port}`;
  });
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes no password line for an expired token or a revoked device, and disables a revoked device\'s account', () => {
    const passwords = renderPasswordFile({ platformSecret: PLATFORM_SECRET, tenants: TENANTS, devices: [LOST, KEPT, EXPIRED, { ...KEPT, device: 'gone', revoked: true }] });
    expect(passwords).toMatch(/^demo\/lost:/m);
    expect(passwords).not.toMatch(/^demo\/old:/m);
    expect(passwords).not.toMatch(/^demo\/gone:/m);
    const dynsec = JSON.parse(renderDynsecConfig(PLATFORM_SECRET, [KEPT, { ...KEPT, device: 'gone', revoked: true }])) as { clients: { username: string; disabled?: boolean }[] };
    expect(dynsec.clients.find((c) => c.username === 'demo/gone')?.disabled).toBe(true);
    expect(dynsec.clients.find((c) => c.username === 'demo/kept')?.disabled).toBeUndefined();
  });

  it('refuses an expired token: it is not in the password file', async () => {
    expect(await login(EXPIRED)).toMatchObject({ connected: false });
  });

  it('disconnects a revoked device at once and refuses it after, while the tenant\'s other device stays connected and reconnects', async () => {
    const held = await login(LOST);
    const other = await login(KEPT);
    expect(held.connected && other.connected).toBe(true);
    if (!held.connected || !other.connected) return;
    const cut = new Promise<void>((resolve) => held.client.once('close', () => resolve()));
    let otherClosed = false;
    other.client.once('close', () => (otherClosed = true));

    await disableDevicesOnBroker({ url, platformSecret: PLATFORM_SECRET }, [LOST satisfies DeviceAddress]);
    await cut;
    held.client.end(true);
    expect(await login(LOST)).toMatchObject({ connected: false });
    expect(otherClosed).toBe(false);
    await other.client.endAsync();
    const again = await login(KEPT);
    expect(again.connected).toBe(true);
    if (again.connected) await again.client.endAsync();

    // Reinstated (the cluster also issues it a new token), it logs in again.
    await enableDevicesOnBroker({ url, platformSecret: PLATFORM_SECRET }, [LOST]);
    const back = await login(LOST);
    expect(back.connected).toBe(true);
    if (back.connected) await back.client.endAsync();
  });
});
