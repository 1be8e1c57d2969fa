import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '@arteria/engine-mqtt';
import { serviceClientIdPrefix, serviceToken, serviceUsername, type SecurityEvent } from '@arteria/ports';
import { deviceToken } from '@arteria/protocol';
import { ATTACKER, OTHER_TENANT_VICTIM, attempt, takeoverSuite, type BrokerUnderTest, SUITE_TENANTS, SUITE_PLATFORM_SECRET } from '@arteria/testing';

const TENANTS = SUITE_TENANTS as Map<string, string>;
const PLATFORM_SECRET = SUITE_PLATFORM_SECRET;

describe('embedded broker (aedes): identity bound to the connection', () => {
  const broker = new EmbeddedBroker();
  const events: SecurityEvent[] = [];
  const errors: Error[] = [];
  let target: BrokerUnderTest;

  beforeAll(async () => {
    await broker.start({
      host: '127.0.0.1',
      port: 0,
      secrets: { tenants: TENANTS, platform: PLATFORM_SECRET },
      hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined, onSecurityEvent: (event) => events.push(event), onError: (err) => errors.push(err) },
    });
    const service = (name: string): { username: string; password: string } => ({ username: serviceUsername(name), password: serviceToken(PLATFORM_SECRET, name) });
    target = {
      url: broker.url,
      password: (device) => deviceToken(TENANTS.get(device.tenant) ?? 'unknown-tenant-secret', device),
      service: { ...service('worker'), clientIdPrefix: serviceClientIdPrefix('worker'), protocolVersion: 4 },
      ingestClientIdPrefix: serviceClientIdPrefix('ingest'),
      ingestCredentials: service('ingest'),
    };
  });
  afterAll(() => broker.close());

  takeoverSuite(() => target);

  it('logs each refusal as a security event with identity, client id and source address', async () => {
    events.length = 0;
    await attempt(broker.url, { clientId: 'hosp2.icu-1', clean: false, username: 'demo/deva', password: target.password(ATTACKER) });
    await attempt(broker.url, { clientId: 'demo.deva', clean: false, username: 'demo/deva', password: 'wrong' });
    expect(events).toEqual([
      expect.objectContaining({ event: 'client_id_refused', identity: 'demo/deva', authenticated: true, clientId: 'hosp2.icu-1', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown }),
      expect.objectContaining({ event: 'login_refused', identity: 'demo/deva', authenticated: false, clientId: 'demo.deva', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown }),
    ]);
  });

  it('reports a client refused in its CONNACK (an MQTT version it does not speak, a refused login) as no broker error', async () => {
    errors.length = 0;
    events.length = 0;
    const v5 = await attempt(broker.url, { clientId: 'demo.deva', clean: true, username: 'demo/deva', password: target.password(ATTACKER), protocolVersion: 5 });
    expect(v5.connected).toBe(false);
    await attempt(broker.url, { clientId: 'demo.deva', clean: false, username: 'demo/deva', password: 'wrong' });
    expect(events.map((event) => event.event)).toEqual(['login_refused']);
    expect(errors).toEqual([]);
  });

  it('logs a subscription outside the device\'s own topics as an ACL denial', async () => {
    const attacker = await attempt(broker.url, { clientId: 'demo.deva', clean: true, username: 'demo/deva', password: target.password(ATTACKER) });
    if (!attacker.connected) throw new Error('attacker could not connect with its own identity');
    events.length = 0;
    await expect(attacker.client.subscribeAsync('arteria/v1/hosp2/icu-1/results', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await attacker.client.endAsync();
    expect(events).toEqual([expect.objectContaining({ event: 'acl_denied', identity: 'demo/deva', clientId: 'demo.deva', topic: 'arteria/v1/hosp2/icu-1/results' })]);
  });

  it('lets a device open a clean probe session under its own id plus a tag, never a persistent one', async () => {
    const probe = await attempt(broker.url, { clientId: 'demo.deva.doctor', clean: true, username: 'demo/deva', password: target.password(ATTACKER) });
    expect(probe.connected).toBe(true);
    if (probe.connected) await probe.client.endAsync();
    const persistent = await attempt(broker.url, { clientId: 'demo.deva.doctor', clean: false, username: 'demo/deva', password: target.password(ATTACKER) });
    expect(persistent.connected).toBe(false);
    const victims = await attempt(broker.url, { clientId: 'hosp2.icu-1.doctor', clean: true, username: 'demo/deva', password: target.password(ATTACKER) });
    expect(victims.connected).toBe(false);
    expect(OTHER_TENANT_VICTIM.tenant).toBe('hosp2');
  });
});
