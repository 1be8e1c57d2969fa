import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { GatewayServiceConfig, LocalMqttOptions, LocalMqttPublisher, ResultDelivery, runDoctor, type DeliveredResult } from '@arteria/gateway-site';
import { Responder, freePort, memoryLogger, startServers, type Servers, phiRun } from '@arteria/testing';
import { gatewayOptions } from './support.js';

const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.99';

/** A private Mosquitto on `port` (TLS with `tls`); resolves once a client can connect. */
async function startMosquitto(directory: string, port: number, tls?: { dir: string; ca: Buffer }): Promise<ChildProcess> {
  const conf = join(directory, `mosquitto-${port}.conf`);
  const lines = [`user ${process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root')}`, `listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'set_tcp_nodelay true'];
  if (tls) lines.push(`cafile ${join(tls.dir, 'ca.pem')}`, `certfile ${join(tls.dir, 'broker.pem')}`, `keyfile ${join(tls.dir, 'broker.key')}`);
  await writeFile(conf, [...lines, ''].join('\n'));
  const child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  for (let i = 0; ; i += 1) {
    try {
      const probe = await mqtt.connectAsync(`${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 1000, ...(tls && { ca: tls.ca }) });
      await probe.endAsync();
      return child;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

interface Event {
  v: number;
  result: { requestId: string; device: string; status: string };
  original: { studyInstanceUid: string; patientId: string };
}

let servers: Servers;
let responder: Responder;
let webhook: Server;
let webhookUrl: string;
const posted: Event[] = [];

beforeAll(async () => {
  servers = await startServers();
  responder = await Responder.start(servers);
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      posted.push(JSON.parse(body) as Event);
      res.end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/results`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => webhook?.close(() => resolve()));
  await responder?.close();
  await servers?.close();
});

describe('result events on the hospital broker (MQTT, QoS 1)', () => {
  it('keeps an event while the local broker is down, retries it, and delivers it after a restart, once per channel', async () => {
    const port = await freePort();
    const device = 'local-mqtt-1';
    const folder = join(servers.directory, 'reports-local-mqtt');
    const options = { folder, webhookUrl, mqtt: { url: `mqtt://127.0.0.1:${port}`, topicPrefix: 'site/results-bus', publishTimeoutMs: 2_000 }, attempts: 2, retryDelayMs: 50, redeliverIntervalMs: 200 };
    const logger = memoryLogger();
    let mosquitto: ChildProcess | undefined;
    let subscriber: mqtt.MqttClient | undefined;
    const received: { topic: string; event: Event }[] = [];
    try {
      // 1. The broker is down: the webhook takes the result, the MQTT event waits on disk.
      let gateway = new Gateway(gatewayOptions(servers, device, { deidentification: { enabled: true } }), { logger });
      let delivery = new ResultDelivery(gateway, options, logger);
      const failed = new Promise<void>((resolve) => delivery.onError(() => resolve()));
      await gateway.start();
      await delivery.start();
      const file = join(servers.directory, 'local-mqtt-run.dcm');
      await writeFile(file, phiRun({ seed: 51, studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.2`, sopInstanceUid: `${STUDY}.2.1` }));
      const { requestId } = await gateway.send(file);
      await failed;
      expect(posted.map((e) => e.result.requestId)).toEqual([requestId]);
      const pending = JSON.parse(await readFile(join(folder, `${requestId}.json`), 'utf8')) as { done: string[] };
      expect(pending.done).toEqual(['webhook']);
      // 2. The gateway restarts (the broker still down), then the broker comes back.
      await delivery.close();
      await gateway.close();
      mosquitto = await startMosquitto(servers.directory, port);
      subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
      subscriber.on('message', (topic, payload) => received.push({ topic, event: JSON.parse(payload.toString()) as Event }));
      await subscriber.subscribeAsync('site/results-bus/#', { qos: 1 });

      gateway = new Gateway(gatewayOptions(servers, device, { deidentification: { enabled: true } }), { logger });
      delivery = new ResultDelivery(gateway, options, logger);
      const delivered = new Promise<DeliveredResult>((resolve) => delivery.onDelivered(resolve));
      await gateway.start();
      await delivery.start();
      try {
        expect((await delivered).result.requestId).toBe(requestId);
        await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 20_000, interval: 20 });
        expect(received[0]?.topic).toBe(`site/results-bus/${device}/results`);
        // The same payload as the webhook: the result, re-identified to the original study.
        expect(received[0]?.event).toEqual(posted[0]);
        expect(received[0]?.event.original).toMatchObject({ studyInstanceUid: STUDY, patientId: 'MRN-0042' });
        expect(posted).toHaveLength(1); // the webhook already had it: not posted again
        expect(await readdir(join(folder, 'sent'))).toContain(`${requestId}.json`);

        // 3. The broker goes away while the gateway runs: the event is retried until it comes back.
        await stop(mosquitto);
        const failedAgain = new Promise<void>((resolve) => delivery.onError(() => resolve()));
        const second = join(servers.directory, 'local-mqtt-run-2.dcm');
        await writeFile(second, phiRun({ seed: 52, studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.3`, sopInstanceUid: `${STUDY}.3.1` }));
        const { requestId: secondId } = await gateway.send(second);
        await failedAgain;
        mosquitto = await startMosquitto(servers.directory, port);
        subscriber.end(true);
        subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
        subscriber.on('message', (topic, payload) => received.push({ topic, event: JSON.parse(payload.toString()) as Event }));
        await subscriber.subscribeAsync('site/results-bus/#', { qos: 1 });
        await vi.waitFor(() => expect(received.map((r) => r.event.result.requestId)).toContain(secondId), { timeout: 15_000, interval: 50 });
        await vi.waitFor(async () => expect(await readdir(join(folder, 'sent'))).toContain(`${secondId}.json`), { timeout: 20_000, interval: 20 });
      } finally {
        await delivery.close();
        await gateway.close();
      }
    } finally {
      await subscriber?.endAsync(true);
      await stop(mosquitto);
    }
  });

  it('is configured in the service file: url, topic prefix, optional TLS; wildcards and other schemes are refused', () => {
    const parse = (mqtt: unknown): ReturnType<typeof GatewayServiceConfig.safeParse> => GatewayServiceConfig.safeParse({ gateway: {}, results: { mqtt } });
    const parsed = parse({ url: 'mqtts://broker.hospital.local:8883', tls: { caFile: '/etc/arteria/ca.pem' } });
    expect(parsed.success && parsed.data.results?.mqtt).toEqual({ url: 'mqtts://broker.hospital.local:8883', tls: { caFile: '/etc/arteria/ca.pem' }, topicPrefix: 'arteria', publishTimeoutMs: 10_000 });
    expect(parsed.success && parsed.data.results?.redeliverIntervalMs).toBe(60_000);
    expect(parse({ url: 'mqtt://broker:1883', topicPrefix: 'site/#' }).success).toBe(false);
    expect(parse({ url: 'mqtt://broker:1883', topicPrefix: '/site' }).success).toBe(false);
    expect(parse({ url: 'http://broker:1883' }).success).toBe(false);
    expect(parse({ url: 'mqtt://broker:1883', password: 'in the file' }).success).toBe(false);
  });

  it('publishes over TLS to a broker with a private CA', async () => {
    const ssl = (...args: string[]): Promise<unknown> => promisify(execFile)('openssl', args, { cwd: servers.directory });
    await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Hospital test CA');
    await writeFile(join(servers.directory, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=broker');
    await ssl('x509', '-req', '-in', 'broker.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.pem', '-days', '2', '-extfile', 'san.ext');
    const ca = await readFile(join(servers.directory, 'ca.pem'));
    const port = await freePort();
    const mosquitto = await startMosquitto(servers.directory, port, { dir: servers.directory, ca });
    const subscriber = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { ca, reconnectPeriod: 0 });
    const publisher = new LocalMqttPublisher(LocalMqttOptions.parse({ url: `mqtts://127.0.0.1:${port}`, tls: { caFile: join(servers.directory, 'ca.pem') } }), 'tls-gw', memoryLogger());
    try {
      const message = new Promise<string>((resolve) => subscriber.on('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
      await subscriber.subscribeAsync('arteria/+/results', { qos: 1 });
      await publisher.start();
      await vi.waitFor(() => expect(publisher.connected).toBe(true), { timeout: 20_000, interval: 20 });
      await publisher.publish(publisher.topic('tls-gw'), '{"v":1}');
      expect(await message).toBe('arteria/tls-gw/results {"v":1}');
      // doctor checks the hospital broker too (with its own client id), when one is configured.
      const doctor = async (url: string): Promise<unknown> => {
        const service = GatewayServiceConfig.parse({ gateway: gatewayOptions(servers, 'tls-gw'), results: { mqtt: { url, tls: { caFile: join(servers.directory, 'ca.pem') } } } });
        const results = await runDoctor(service, { timeoutMs: 1_500, minFreeBytes: 0, maxClockSkewMs: 60_000, certificateWarnDays: 0 });
        return results.find((r) => r.check === 'local broker');
      };
      expect(await doctor(`mqtts://127.0.0.1:${port}`)).toMatchObject({ state: 'ok' });
      expect(publisher.connected).toBe(true); // the service's connection was not taken over
      expect(await doctor(`mqtts://127.0.0.1:${await freePort()}`)).toMatchObject({ state: 'fail', detail: expect.stringContaining('no connection') as unknown });
    } finally {
      await publisher.close();
      await subscriber.endAsync(true);
      await stop(mosquitto);
    }
  });
});
