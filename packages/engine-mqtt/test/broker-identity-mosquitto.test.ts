import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { bindDevicesOnBroker, renderPasswordFile } from '@arteria/engine-mqtt';
import { deviceClientId, deviceUsername } from '@arteria/protocol';
import { startSuiteMosquitto, suiteLegacyPassword as password, type RunningMosquitto, ATTACKER, SUITE_DEVICES, attempt, takeoverSuite, type BrokerUnderTest, SUITE_TENANTS, SUITE_PLATFORM_SECRET } from '@arteria/testing';

const TENANTS = SUITE_TENANTS as Map<string, string>;
const PLATFORM_SECRET = SUITE_PLATFORM_SECRET;

describe('Mosquitto with the generated files: identity bound to the connection', () => {
  let dir: string;
  let broker: RunningMosquitto;
  let target: BrokerUnderTest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mosquitto-identity-'));
    ({ broker, target } = await startSuiteMosquitto(dir));
  });
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  takeoverSuite(() => target);

  it('keeps the binding after a reload (SIGHUP, as a token rotation sends)', async () => {
    broker.reload();
    // The reload is done once Mosquitto answers again; the attacker must still be refused.
    const own = await attempt(target.url, { clientId: deviceClientId(ATTACKER), clean: true, username: deviceUsername(ATTACKER), password: password(ATTACKER) });
    expect(own.connected).toBe(true);
    if (own.connected) await own.client.endAsync();
    const takeover = await attempt(target.url, { clientId: 'hosp2.icu-1', clean: false, username: deviceUsername(ATTACKER), password: password(ATTACKER) });
    expect(takeover.connected).toBe(false);
  });

  it('binds a device added while Mosquitto runs, through the dynamic security control topic', async () => {
    const added = { tenant: 'demo', device: 'devc' };
    // The password file learns the device on reload; until the binding arrives it could use any client id.
    await writeFile(broker.files.passwords, renderPasswordFile({ platformSecret: PLATFORM_SECRET, tenants: TENANTS, devices: [...SUITE_DEVICES, added] }), { mode: 0o600 });
    await bindDevicesOnBroker({ url: target.url, platformSecret: PLATFORM_SECRET }, [added, ATTACKER]);
    broker.reload();
    const own = await waitConnected(() => attempt(target.url, { clientId: deviceClientId(added), clean: true, username: deviceUsername(added), password: password(added) }));
    await own.endAsync();
    const takeover = await attempt(target.url, { clientId: deviceClientId(ATTACKER), clean: false, username: deviceUsername(added), password: password(added) });
    expect(takeover.connected).toBe(false);
  });
});

/** The reload is asynchronous: retries the attempt until it connects. */
async function waitConnected(connect: () => ReturnType<typeof attempt>): Promise<MqttClient> {
  for (let i = 0; ; i++) {
    const result = await connect();
    if (result.connected) return result.client;
    if (i >= 50) throw new Error(`could not connect: ${String(result.code)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
