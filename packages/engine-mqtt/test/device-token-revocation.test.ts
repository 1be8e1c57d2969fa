import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '@arteria/engine-mqtt';
import { REVOCATIONS_FILE, WatchedRevocations, reinstateDevice, revokeDevice, type Secrets, type SecurityEvent } from '@arteria/ports';
import { deviceClientId, deviceToken, deviceUsername, legacyDeviceToken, type DeviceAddress } from '@arteria/protocol';
import { attempt } from '@arteria/testing';

const SECRET = 'demo-tenant-secret-0123456789';
const A: DeviceAddress = { tenant: 'demo', device: 'deva' };
const B: DeviceAddress = { tenant: 'demo', device: 'devb' };
const HOUR = 3_600_000;

describe('embedded broker: device tokens expire, one device can be revoked', () => {
  const broker = new EmbeddedBroker();
  const events: SecurityEvent[] = [];
  let dir: string;
  let file: string;
  let secrets: Secrets;

  const login = (device: DeviceAddress, token: string): ReturnType<typeof attempt> =>
    attempt(broker.url, { clientId: deviceClientId(device), clean: true, username: deviceUsername(device), password: token });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-token-'));
    file = path.join(dir, REVOCATIONS_FILE);
    // checkEveryMs 0: each login rereads a changed list, so the test needs no waiting.
    secrets = { tenants: new Map([['demo', SECRET]]), platform: 'platform-secret-0123456789', revocations: new WatchedRevocations(file, { checkEveryMs: 0 }) };
    await broker.start({ host: '127.0.0.1', port: 0, secrets, hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined, onSecurityEvent: (event) => events.push(event) } });
  });
  afterAll(async () => {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an expired token with a security event naming the identity and source address; a renewed token connects', async () => {
    events.length = 0;
    const expired = deviceToken(SECRET, A, { issuedAt: Date.now() - 2 * HOUR, expiresAt: Date.now() - 1_000 });
    const refused = await login(A, expired);
    expect(refused).toMatchObject({ connected: false, code: 4 });
    expect(events).toEqual([
      expect.objectContaining({ event: 'login_refused', code: 'CREDENTIAL_EXPIRED', identity: 'demo/deva', clientId: 'demo.deva', address: expect.stringMatching(/127\.0\.0\.1:\d+$/) as unknown, reason: expect.stringMatching(/expired at/) as unknown }),
    ]);
    const renewed = await login(A, deviceToken(SECRET, A, { generation: 1 }));
    expect(renewed.connected).toBe(true);
    if (renewed.connected) await renewed.client.endAsync();
  });

  it('judges expiry by the broker\'s clock: a token good now is refused once its time has passed', async () => {
    const token = deviceToken(SECRET, A, { expiresAt: Date.now() + HOUR });
    const before = await login(A, token);
    expect(before.connected).toBe(true);
    if (before.connected) await before.client.endAsync();
    secrets.now = () => Date.now() + 2 * HOUR;
    try {
      expect(await login(A, token)).toMatchObject({ connected: false });
    } finally {
      delete secrets.now;
    }
  });

  it('refuses a token without an expiry (from before tokens expired) unless legacy tokens are accepted', async () => {
    events.length = 0;
    expect(await login(A, legacyDeviceToken(SECRET, A))).toMatchObject({ connected: false });
    expect(events).toEqual([expect.objectContaining({ event: 'login_refused', code: 'CREDENTIAL_EXPIRED', identity: 'demo/deva' })]);
    secrets.acceptLegacyTokens = true;
    try {
      const legacy = await login(A, legacyDeviceToken(SECRET, A));
      expect(legacy.connected).toBe(true);
      if (legacy.connected) await legacy.client.endAsync();
    } finally {
      delete secrets.acceptLegacyTokens;
    }
  });

  it('refuses a revoked device whatever token it shows, cuts its open connection off, and lets the tenant\'s other devices in', async () => {
    const held = await login(A, deviceToken(SECRET, A));
    expect(held.connected).toBe(true);
    if (!held.connected) return;
    const cut = new Promise<void>((resolve) => held.client.once('close', () => resolve()));

    await revokeDevice(file, A, 'reported stolen');
    events.length = 0;
    const fresh = await login(A, deviceToken(SECRET, A, { generation: 7 }));
    expect(fresh).toMatchObject({ connected: false, code: 5 });
    expect(events).toEqual([expect.objectContaining({ event: 'credential_revoked', code: 'DEVICE_REVOKED', identity: 'demo/deva', address: expect.stringMatching(/127\.0\.0\.1:\d+$/) as unknown, reason: expect.stringMatching(/reported stolen/) as unknown })]);

    const other = await login(B, deviceToken(SECRET, B));
    expect(other.connected).toBe(true);
    if (other.connected) await other.client.endAsync();

    // The connection it held from before: cut off at its next publish.
    held.client.publish(`arteria/v1/${A.tenant}/${A.device}/status`, '{}', { qos: 1 });
    await cut;
    expect(events).toContainEqual(expect.objectContaining({ event: 'credential_revoked', identity: 'demo/deva', topic: `arteria/v1/${A.tenant}/${A.device}/status` }));
    held.client.end(true);

    // Reinstated, it connects again.
    await reinstateDevice(file, A);
    const back = await login(A, deviceToken(SECRET, A, { generation: 8 }));
    expect(back.connected).toBe(true);
    if (back.connected) await back.client.endAsync();
  });
});
