import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { expect, it } from 'vitest';
import { deviceClientId, deviceTopic, deviceUsername, type DeviceAddress, deviceToken } from '@arteria/protocol';

/** What the attacker suite needs from a broker under test. */
export interface BrokerUnderTest {
  url: string;
  /** TLS material every client connects with (CA of the broker; client certificates where required). */
  tls?: (who: DeviceAddress | 'service') => Pick<IClientOptions, 'ca' | 'cert' | 'key'>;
  /** The password a provisioned device logs in with. */
  password(device: DeviceAddress): string;
  /** A platform service's credentials and the client id prefix of its processes (e.g. `arteria-ingest`). */
  service: { username: string; password: string; clientIdPrefix: string; protocolVersion: 4 | 5 };
  /** Another service's client id prefix a device might try to squat (the ingest service's). */
  ingestClientIdPrefix: string;
  ingestCredentials: { username: string; password: string };
}

export const ATTACKER: DeviceAddress = { tenant: 'demo', device: 'deva' };
export const SAME_TENANT_VICTIM: DeviceAddress = { tenant: 'demo', device: 'devb' };
export const OTHER_TENANT_VICTIM: DeviceAddress = { tenant: 'hosp2', device: 'icu-1' };
/** Devices the broker must know (provisioned). */
/** The tenants' secrets and the platform secret every broker under the suite is set up with. */
export const SUITE_TENANTS: ReadonlyMap<string, string> = new Map([
  ['demo', 'demo-tenant-secret-0123456789'],
  ['hosp2', 'hosp2-tenant-secret-0123456789'],
]);
export const SUITE_PLATFORM_SECRET = 'platform-secret-0123456789';
/** A suite device's token. */
export const suitePassword = (device: DeviceAddress): string => deviceToken(SUITE_TENANTS.get(device.tenant) ?? 'unknown-tenant-secret', device);

export const SUITE_DEVICES: readonly DeviceAddress[] = [ATTACKER, SAME_TENANT_VICTIM, OTHER_TENANT_VICTIM];

type Attempt = { connected: true; client: MqttClient } | { connected: false; code: number | string | undefined };

/** One connection attempt, no retries: resolves with the client or with the CONNACK refusal. */
export async function attempt(url: string, options: IClientOptions): Promise<Attempt> {
  try {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 4, ...options });
    return { connected: true, client };
  } catch (err) {
    return { connected: false, code: (err as { code?: number | string }).code };
  }
}

/**
 * The attacker suite: device demo/deva, holding its own valid credentials, tries to reach
 * other identities' sessions. Every attack must be refused at CONNECT, and the victim must
 * keep its queued QoS 1 result (it reconnects and receives it) and stay connected.
 */
export function takeoverSuite(setup: () => BrokerUnderTest): void {
  const asDevice = (b: BrokerUnderTest, login: DeviceAddress, clientId: string, clean: boolean, password = b.password(login)): IClientOptions => ({
    clientId,
    clean,
    username: deviceUsername(login),
    password,
    ...b.tls?.(login),
  });

  /** The victim holds a persistent session with a subscription, goes offline, and a result is queued for it. */
  async function victimWithQueuedResult(b: BrokerUnderTest, victim: DeviceAddress, marker: string): Promise<void> {
    const first = await attempt(b.url, asDevice(b, victim, deviceClientId(victim), false));
    if (!first.connected) throw new Error(`victim could not connect: ${String(first.code)}`);
    await first.client.subscribeAsync(deviceTopic(victim, 'results'), { qos: 1 });
    await first.client.endAsync();
    const service = await attempt(b.url, { username: b.service.username, password: b.service.password, protocolVersion: b.service.protocolVersion, clientId: `${b.service.clientIdPrefix}-suite`, clean: true, ...b.tls?.('service') });
    if (!service.connected) throw new Error(`service could not connect: ${String(service.code)}`);
    await service.client.publishAsync(deviceTopic(victim, 'results'), marker, { qos: 1 });
    await service.client.endAsync();
  }

  /** The victim reconnects to its session and must receive the queued result. */
  async function victimReceives(b: BrokerUnderTest, victim: DeviceAddress, marker: string): Promise<void> {
    const client = mqtt.connect(b.url, { ...asDevice(b, victim, deviceClientId(victim), false), protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const received = await new Promise<string>((resolve, reject) => {
        client.on('message', (_topic, payload) => {
          const text = payload.toString();
          if (text === marker) resolve(text);
        });
        client.on('error', reject);
      });
      expect(received).toBe(marker);
    } finally {
      await client.endAsync();
    }
  }

  const expectRefused = (result: Attempt): void => {
    if (result.connected) {
      result.client.end(true);
      throw new Error(`the broker accepted the attacker as ${result.client.options.clientId ?? '?'}`);
    }
    expect(result.connected).toBe(false);
  };

  for (const [label, victim] of [['cross-tenant', OTHER_TENANT_VICTIM], ['same-tenant', SAME_TENANT_VICTIM]] as const) {
    for (const [action, clean] of [['resuming', false], ['wiping', true]] as const) {
      it(`refuses demo/deva ${action} the ${label} victim's session (its client id, clean: ${clean}); the victim keeps its queued result`, async () => {
        const b = setup();
        const marker = `queued-${label}-${action}`;
        await victimWithQueuedResult(b, victim, marker);
        expectRefused(await attempt(b.url, asDevice(b, ATTACKER, deviceClientId(victim), clean)));
        await victimReceives(b, victim, marker);
      });
    }
  }

  it('refuses demo/deva taking over a connected victim: the victim is not disconnected', async () => {
    const b = setup();
    const victim = await attempt(b.url, asDevice(b, OTHER_TENANT_VICTIM, deviceClientId(OTHER_TENANT_VICTIM), false));
    if (!victim.connected) throw new Error('victim could not connect');
    let closed = false;
    victim.client.on('close', () => (closed = true));
    try {
      expectRefused(await attempt(b.url, asDevice(b, ATTACKER, deviceClientId(OTHER_TENANT_VICTIM), false)));
      // A round trip through the broker after the attempt: the victim's connection still works.
      await victim.client.subscribeAsync(deviceTopic(OTHER_TENANT_VICTIM, 'results'), { qos: 1 });
      expect(closed).toBe(false);
    } finally {
      await victim.client.endAsync();
    }
  });

  it("refuses demo/deva using the ingest service's client id; the ingest session stays connected", async () => {
    const b = setup();
    const ingestId = `${b.ingestClientIdPrefix}-pod-1`;
    const ingest = await attempt(b.url, { ...b.ingestCredentials, clientId: ingestId, clean: true, protocolVersion: b.service.protocolVersion, ...b.tls?.('service') });
    if (!ingest.connected) throw new Error(`ingest could not connect: ${String(ingest.code)}`);
    let closed = false;
    ingest.client.on('close', () => (closed = true));
    try {
      expectRefused(await attempt(b.url, asDevice(b, ATTACKER, ingestId, false)));
      expectRefused(await attempt(b.url, asDevice(b, ATTACKER, b.ingestClientIdPrefix, true)));
      await ingest.client.subscribeAsync('arteria/v1/demo/deva/status', { qos: 1 });
      expect(closed).toBe(false);
    } finally {
      await ingest.client.endAsync();
    }
  });

  it('refuses client ids with wildcards; the victim keeps its queued result', async () => {
    const b = setup();
    const marker = 'queued-wildcards';
    await victimWithQueuedResult(b, OTHER_TENANT_VICTIM, marker);
    for (const clientId of ['#', '+', 'demo.deva#', 'demo.+', 'hosp2.+']) {
      expectRefused(await attempt(b.url, asDevice(b, ATTACKER, clientId, false)));
    }
    await victimReceives(b, OTHER_TENANT_VICTIM, marker);
  });

  it('refuses a never-provisioned device name, with the attacker\'s own password; the victim keeps its queued result', async () => {
    const b = setup();
    const marker = 'queued-unknown';
    await victimWithQueuedResult(b, OTHER_TENANT_VICTIM, marker);
    for (const ghost of [{ tenant: 'demo', device: 'ghost' }, { tenant: 'hosp2', device: 'ghost' }, { tenant: 'nobody', device: 'deva' }]) {
      expectRefused(await attempt(b.url, asDevice(b, ghost, deviceClientId(ghost), false, b.password(ATTACKER))));
    }
    await victimReceives(b, OTHER_TENANT_VICTIM, marker);
  });

  it('still lets each device resume its own session', async () => {
    const b = setup();
    const marker = 'queued-own';
    await victimWithQueuedResult(b, ATTACKER, marker);
    await victimReceives(b, ATTACKER, marker);
  });
}
