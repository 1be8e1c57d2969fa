import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ArteriaError, deviceTopic, deviceToken, deviceUsername, type DeviceAddress, type GrantAnswerV1, type ProbeAnswerV1, type ResultV1 } from '@arteria/protocol';
import type { ResultPublisher } from '@arteria/ports';

/** A result publisher under test, and the broker its devices subscribe to. */
export interface ResultPublisherUnderTest {
  publisher: ResultPublisher;
  /** The broker URL and tenant secrets devices log in with. */
  brokerUrl: string;
  tenantSecret: (tenant: string) => string;
  close(): Promise<void>;
}

const DEVICE_A: DeviceAddress = { tenant: 'acme', device: 'cath-lab-1' };
const DEVICE_B: DeviceAddress = { tenant: 'hosp2', device: 'icu-1' };

function result(to: DeviceAddress, requestId: string): ResultV1 {
  return {
    v: 1,
    kind: 'result',
    requestId,
    tenant: to.tenant,
    device: to.device,
    status: 'ok',
    algorithm: { name: 'contrast-injection', version: '1.2.0', digest: `sha256:${'a'.repeat(64)}` },
    output: { contrastDetected: true },
    timings: {},
  } as unknown as ResultV1;
}

interface Listener {
  messages: Record<string, unknown>[];
  close(): Promise<void>;
}

async function listen(url: string, secret: string, device: DeviceAddress): Promise<Listener> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: `${device.tenant}.${device.device}`, username: deviceUsername(device), password: deviceToken(secret, device), clean: true, reconnectPeriod: 0 });
  const messages: Record<string, unknown>[] = [];
  client.on('message', (_topic, payload) => messages.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  await client.subscribeAsync(deviceTopic(device, 'results'), { qos: 1 });
  return { messages, close: () => client.endAsync() };
}

/**
 * The contract every `ResultPublisher` keeps: a result reaches its own device's results
 * topic (and no other device's), once, intact; probe and grant answers go the same way;
 * `close()` is idempotent and a publish after it is a typed error, never a silent drop.
 */
export function resultPublisherConformance(name: string, setup: () => Promise<ResultPublisherUnderTest>): void {
  describe(`ResultPublisher conformance: ${name}`, () => {
    let under: ResultPublisherUnderTest;
    let a: Listener;
    let b: Listener;

    beforeAll(async () => {
      under = await setup();
      a = await listen(under.brokerUrl, under.tenantSecret(DEVICE_A.tenant), DEVICE_A);
      b = await listen(under.brokerUrl, under.tenantSecret(DEVICE_B.tenant), DEVICE_B);
    }, 60_000);
    afterAll(async () => {
      await a.close();
      await b.close();
      await under.close();
    });

    it('delivers each result to its own device, once and intact, and to no other device', async () => {
      const sent = [result(DEVICE_A, 'r00000000000000000000000000000a1'), result(DEVICE_A, 'r00000000000000000000000000000a2'), result(DEVICE_B, 'r00000000000000000000000000000b1')];
      for (const r of sent) await under.publisher.publish(r);
      await vi.waitFor(() => expect(a.messages.length >= 2 && b.messages.length >= 1, 'the results').toBe(true), { timeout: 5_000, interval: 10 });
      await new Promise((r) => setTimeout(r, 200)); // a duplicate would arrive by now
      expect(a.messages).toEqual([JSON.parse(JSON.stringify(sent[0])), JSON.parse(JSON.stringify(sent[1]))]);
      expect(b.messages).toEqual([JSON.parse(JSON.stringify(sent[2]))]);
    });

    it('answers probes and upload grants on the device\'s results topic', async () => {
      a.messages.length = 0;
      const probe: ProbeAnswerV1 = { v: 1, kind: 'probe-answer', probeId: 'probe-1', tenant: DEVICE_A.tenant, device: DEVICE_A.device, algorithms: [] } as unknown as ProbeAnswerV1;
      const grant: GrantAnswerV1 = { v: 1, kind: 'grant-answer', grantId: 'grant-1', tenant: DEVICE_A.tenant, device: DEVICE_A.device, key: 'acme/cath-lab-1/x.dcm', expiresAt: 0, urls: {}, parts: [] } as unknown as GrantAnswerV1;
      expect(typeof under.publisher.publishProbeAnswer, `${name} answers probes`).toBe('function');
      expect(typeof under.publisher.publishGrant, `${name} answers grants`).toBe('function');
      await under.publisher.publishProbeAnswer?.(probe);
      await under.publisher.publishGrant?.(grant);
      await vi.waitFor(() => expect(a.messages.length, 'the answers').toBeGreaterThanOrEqual(2), { timeout: 5_000, interval: 10 });
      expect(a.messages.map((m) => m.kind)).toEqual(['probe-answer', 'grant-answer']);
    });

    it('closes idempotently; a publish after close is a typed error', async () => {
      await under.publisher.close();
      await under.publisher.close();
      const error = await under.publisher.publish(result(DEVICE_A, 'r00000000000000000000000000000a3')).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ArteriaError);
    });
  });
}
