import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { brokerServiceCredentials, writeMosquittoFiles } from '@arteria/engine-mqtt';
import { deviceClientId, deviceTopic, deviceUsername, encodePayload, type ResultV1, legacyDeviceToken } from '@arteria/protocol';
import { spawnMosquitto, type MosquittoProcess, TENANT, TENANT_SECRET, freePort, memoryLogger } from '@arteria/testing';
import { gatewayOptions } from './support.js';
import { Gateway, type GatewayOptionsInput } from '@arteria/gateway';
import { GatewayServiceConfig, runDoctor, type CheckResult } from '@arteria/gateway-site';

const PLATFORM_SECRET = 'platform-secret-0123456789';
const DEVICE = { tenant: TENANT, device: 'doctor-1' };
const DOCTOR = { timeoutMs: 2_000, minFreeBytes: 0, maxClockSkewMs: 60_000, certificateWarnDays: 0 };

/** Mosquitto as `arteria broker mosquitto` writes it: dynamic security binds the device to its one client id. */
describe('arteria-gateway doctor against Mosquitto with dynamic security', () => {
  let dir: string;
  let mqttUrl: string;
  let broker: MosquittoProcess;
  let options: GatewayOptionsInput;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arteria-doctor-mosquitto-'));
    const port = await freePort();
    const user = process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root');
    const files = await writeMosquittoFiles({ host: '127.0.0.1', plaintext: true, dir, port, persistenceDir: join(dir, 'data'), user, platformSecret: PLATFORM_SECRET, tenants: new Map([[TENANT, TENANT_SECRET]]), devices: [DEVICE] });
    broker = await spawnMosquitto(files.conf, port);
    mqttUrl = `mqtt://127.0.0.1:${port}`;
    // The broker is what the doctor checks here: the object store is not running.
    // The password file holds the token `arteria broker mosquitto` writes for a listed device (no expiry).
    options = { ...gatewayOptions({ mqttUrl, s3Endpoint: `http://127.0.0.1:${await freePort()}`, directory: dir }, DEVICE.device), token: legacyDeviceToken(TENANT_SECRET, DEVICE) };
  });
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const brokerCheck = async (gateway: GatewayOptionsInput = options): Promise<CheckResult | undefined> =>
    (await runDoctor(GatewayServiceConfig.parse({ gateway }), DOCTOR)).find((c) => c.check === 'broker');

  it('refuses any client id but the bound one, which is why the doctor has no id of its own', async () => {
    const refused = connect(mqttUrl, { protocolVersion: 4, clientId: `${deviceClientId(DEVICE)}.doctor`, clean: true, username: deviceUsername(DEVICE), password: options.token, reconnectPeriod: 0 });
    const error = await new Promise<Error>((resolve) => refused.once('error', resolve));
    await refused.endAsync(true);
    expect(error.message).toMatch(/not authori[sz]ed/i);
  });

  it('with no gateway running, connects once as the device and leaves the results queued in its session', async () => {
    // The device's persistent session, as the gateway leaves it when it stops.
    const first = new Gateway(options, { logger: memoryLogger() });
    await first.start();
    expect(first.stats().connected).toBe(true);
    await first.close();
    // The platform answers while the gateway is down: the broker queues it in the session.
    const worker = brokerServiceCredentials(PLATFORM_SECRET, 'worker');
    const platform = connect(mqttUrl, { protocolVersion: 5, clientId: `${worker.username}-doctor-test`, username: worker.username, password: worker.password, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => platform.once('connect', () => resolve()).once('error', reject));
    const result: ResultV1 = { v: 1, requestId: `r${'d'.repeat(31)}`, tenant: TENANT, device: DEVICE.device, status: 'ok', output: {}, timings: {} };
    await platform.publishAsync(deviceTopic(DEVICE, 'results'), encodePayload(result), { qos: 1 });
    await platform.endAsync();

    const check = await brokerCheck();
    expect(check).toMatchObject({ state: 'ok' });
    expect(check?.detail).toContain(`as ${deviceClientId(DEVICE)} (no gateway running here`);

    // The doctor acknowledged nothing: the gateway still gets the result when it starts.
    const logger = memoryLogger();
    await using second = new Gateway(options, { logger });
    await second.start();
    await vi.waitFor(() => expect(logger.lines.some((l) => l.message === 'ignoring a result the outbox is not waiting for' && l.fields?.requestId === result.requestId)).toBe(true), { timeout: 20_000, interval: 20 });
  });

  it("while the gateway runs, reports the gateway's own connection and leaves its session alone", async () => {
    const gateway = new Gateway(options, { logger: memoryLogger() });
    const connection: string[] = [];
    gateway.on('connection', ({ state }) => connection.push(state));
    await gateway.start();
    try {
      const check = await brokerCheck();
      expect(check).toMatchObject({ state: 'ok' });
      expect(check?.detail).toMatch(new RegExp(`^the running gateway \\(pid ${process.pid}\\) is connected to ${mqttUrl} over MQTT 5 as ${TENANT}/${DEVICE.device} since `));
      expect(check?.detail).toContain('not checked with a second connection');
      expect(gateway.stats().connected).toBe(true);
      expect(connection).toEqual(['ready']);
    } finally {
      await gateway.close();
    }
    expect((await brokerCheck())?.detail).toContain('no gateway running here');
  });

  it('reports why a running gateway is not connected', async () => {
    const refused = { ...options, device: 'doctor-2', outboxPath: join(dir, 'doctor-2', 'outbox.sqlite') };
    await using gateway = new Gateway(refused, { logger: memoryLogger() });
    await gateway.start();
    await vi.waitFor(async () => expect((await brokerCheck(refused))?.detail).toMatch(/is not connected to .*: Connection refused: Not authorized/), { timeout: 20_000, interval: 50 });
    expect(await brokerCheck(refused)).toMatchObject({ state: 'fail' });
  });
});
