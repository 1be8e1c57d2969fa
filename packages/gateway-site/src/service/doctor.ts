import { constants } from 'node:fs';
import type { Agent } from 'node:http';
import { access, stat, statfs } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { connect } from 'mqtt';
import { deviceClientId, deviceUsername } from '@arteria/protocol';
import { createS3Client, type GatewayConfig, type GatewayLogger, loadMqttTls, type LocalStatusV1, parseGatewayOptions, proxyAgentFor, runningGateway } from '@arteria/gateway';
import { echoNode } from '../dimse/scu.js';
import { LocalMqttPublisher, type LocalMqttOptions } from '../results/local-mqtt.js';
import { headThroughProxy } from './proxied-head.js';
import type { GatewayServiceConfig } from './service-config.js';

export type CheckState = 'ok' | 'warn' | 'fail';
export interface CheckResult {
  check: string;
  state: CheckState;
  detail: string;
}

export interface DoctorOptions {
  timeoutMs: number;
  /** Below this much free space where the outbox lives: fail (runs are spooled there). */
  minFreeBytes: number;
  /** Clock offset from the object store's clock beyond which the check fails. */
  maxClockSkewMs: number;
  /** Certificates expiring sooner than this warn. */
  certificateWarnDays: number;
}

const within = <T>(ms: number, work: Promise<T>): Promise<T> =>
  Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

/**
 * Checks what a gateway needs to work, the way an installer would: the broker accepts its
 * credentials, the object store its keys, certificates are valid, the clock agrees with
 * the store's, the outbox disk has room, and the DICOM port is free (or already ours).
 */
export async function runDoctor(service: GatewayServiceConfig, options: DoctorOptions): Promise<CheckResult[]> {
  let config: GatewayConfig;
  try {
    config = parseGatewayOptions(service.gateway);
  } catch (err) {
    return [{ check: 'config', state: 'fail', detail: (err as Error).message }];
  }
  const checks: [string, () => Promise<Omit<CheckResult, 'check'>>][] = [
    ['broker', () => checkBroker(config, options)],
    ['object store', () => checkObjectStore(config, options)],
    ['certificates', () => checkCertificates(config, options)],
    ['clock', () => checkClock(config, options)],
    ['disk', () => checkDisk(config, options)],
    ['de-identification key', () => checkKey(config)],
    ['dicom port', () => checkDicomPort(service, options)],
    ['folders', () => checkFolders(service, config)],
  ];
  const localBroker = service.results?.mqtt;
  if (localBroker !== undefined) checks.push(['local broker', () => checkLocalBroker(localBroker, config.device, options)]);
  const results: CheckResult[] = [{ check: 'config', state: 'ok', detail: `${config.tenant}/${config.device}` }];
  for (const [check, run] of checks) {
    try {
      results.push({ check, ...(await run()) });
    } catch (err) {
      results.push({ check, state: 'fail', detail: (err as Error).message });
    }
  }
  return results;
}

/**
 * The broker binds the device's one session to its client id `{tenant}.{device}` (Mosquitto's
 * dynamic security refuses any other id for the device), so the doctor never opens a
 * second session beside a running gateway: connecting as the device would take the
 * session over and disconnect the gateway. While a gateway runs on this outbox, the check
 * reports that gateway's own connection (its local status file). Otherwise it connects
 * once as the device, briefly: `clean: false`, so results queued in the session stay
 * queued, no last will, and nothing the broker delivers is acknowledged (the gateway gets
 * it again when it starts).
 */
async function checkBroker(config: GatewayConfig, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  const running = await runningGateway(config.outboxPath);
  if (running !== undefined) return fromRunningGateway(running, config);
  const clientId = deviceClientId(config);
  const client = connect(config.mqttUrl, {
    protocolVersion: 4,
    clientId,
    clean: false,
    username: deviceUsername(config),
    password: config.token,
    reconnectPeriod: 0,
    connectTimeout: options.timeoutMs,
    ...(await loadMqttTls(config.tls)),
    ...proxied(config, config.mqttUrl),
  });
  // Queued results are left unacknowledged: the broker keeps them for the gateway.
  client.handleMessage = () => undefined;
  try {
    await within(
      options.timeoutMs,
      new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      }),
    );
    return { state: 'ok', detail: `${config.mqttUrl} accepted ${deviceUsername(config)} as ${clientId} (no gateway running here; queued results left for it)` };
  } finally {
    await client.endAsync(true);
  }
}

function fromRunningGateway(status: LocalStatusV1, config: GatewayConfig): Omit<CheckResult, 'check'> {
  const ago = (at: number | undefined): string => (at === undefined ? '' : ` since ${new Date(at).toISOString()}`);
  const who = `the running gateway (pid ${status.pid})`;
  const note = 'not checked with a second connection: the broker lets the device hold one session';
  const over = status.broker.protocol === undefined ? '' : ` over MQTT ${status.broker.protocol}`;
  if (status.broker.connected) return { state: 'ok', detail: `${who} is connected to ${status.broker.url}${over} as ${deviceUsername(config)}${ago(status.broker.since)} (${note})` };
  const why = status.broker.lastError === undefined ? '' : `: ${status.broker.lastError}`;
  return { state: 'fail', detail: `${who} is not connected to ${status.broker.url}${ago(status.broker.since)}${why} (${note})` };
}

/** The hospital broker for result events accepts a connection (own client id: the service's stays connected). */
async function checkLocalBroker(mqtt: LocalMqttOptions, device: string, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  let lastError = '';
  const logger: GatewayLogger = { info: () => undefined, error: () => undefined, warn: (_message, fields) => (lastError = typeof fields?.error === 'string' ? fields.error : '') };
  const publisher = new LocalMqttPublisher({ ...mqtt, clientId: `${mqtt.clientId ?? `arteria-gateway-${device}-results`}-doctor` }, device, logger);
  try {
    await publisher.start();
    const until = Date.now() + options.timeoutMs;
    while (!publisher.connected && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    if (publisher.connected) return { state: 'ok', detail: `${mqtt.url} accepts result events on ${publisher.topic(device)}` };
    return { state: 'fail', detail: `${mqtt.url}: no connection within ${options.timeoutMs} ms${lastError === '' ? '' : ` (${lastError})`}` };
  } finally {
    await publisher.close();
  }
}

async function checkObjectStore(config: GatewayConfig, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  const s3 = createS3Client(config.s3, proxyAgentFor(config.s3.endpoint, config.proxy, process.env));
  try {
    if (config.s3.accessKeyId === undefined) {
      // Upload grants: no key to try. Any answer from the store (it refuses an unsigned
      // HeadBucket) proves it is reachable; grants themselves come over the broker.
      try {
        await within(options.timeoutMs, s3.send(new HeadBucketCommand({ Bucket: config.s3.bucket })));
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === undefined) throw err;
      }
      return { state: 'ok', detail: `${config.s3.endpoint} reachable; uploads use the platform's upload grants (no keys on site)` };
    }
    await within(options.timeoutMs, s3.send(new HeadBucketCommand({ Bucket: config.s3.bucket })));
    return { state: 'ok', detail: `${config.s3.endpoint} bucket ${config.s3.bucket} reachable with the configured keys` };
  } finally {
    s3.destroy();
  }
}

async function checkCertificates(config: GatewayConfig, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  const endpoints = [new URL(config.mqttUrl), new URL(config.s3.endpoint)].filter((u) => ['mqtts:', 'tls:', 'wss:', 'https:'].includes(u.protocol));
  if (endpoints.length === 0) return { state: 'warn', detail: 'no TLS: broker and object store are reached unencrypted (use mqtts:// and https:// outside a lab)' };
  const details: string[] = [];
  let state: CheckState = 'ok';
  for (const url of endpoints) {
    const port = Number(url.port || (url.protocol === 'mqtts:' || url.protocol === 'tls:' ? 8883 : 443));
    const agent = proxyAgentFor(url.toString(), config.proxy, process.env);
    if (agent !== undefined) {
      // Through the site proxy, as the gateway itself connects.
      const { certificate } = await within(options.timeoutMs, headThroughProxy(url, agent));
      const daysLeft = Math.floor((Date.parse(certificate?.valid_to ?? '') - Date.now()) / 86_400_000);
      if (!(daysLeft >= options.certificateWarnDays)) state = 'warn';
      details.push(`${url.host}: valid, ${daysLeft} days left (through the proxy)`);
      continue;
    }
    const socket = tlsConnect({ host: url.hostname, port, servername: url.hostname });
    try {
      await within(options.timeoutMs, new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)));
      const cert = socket.getPeerCertificate();
      const daysLeft = Math.floor((Date.parse(cert.valid_to) - Date.now()) / 86_400_000);
      if (daysLeft < options.certificateWarnDays) state = 'warn';
      details.push(`${url.host}: valid, ${daysLeft} days left`);
    } finally {
      socket.destroy();
    }
  }
  return { state, detail: details.join('; ') };
}

async function checkClock(config: GatewayConfig, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  const before = Date.now();
  const agent = proxyAgentFor(config.s3.endpoint, config.proxy, process.env);
  const date = agent === undefined ? (await within(options.timeoutMs, fetch(config.s3.endpoint, { method: 'HEAD' }))).headers.get('date') : (await within(options.timeoutMs, headThroughProxy(new URL(config.s3.endpoint), agent))).date;
  const after = Date.now();
  if (date === null) return { state: 'warn', detail: 'the object store sent no Date header to compare with' };
  // HTTP dates have one-second resolution: compare with the middle of the round trip.
  const skewMs = (before + after) / 2 - Date.parse(date);
  const state: CheckState = Math.abs(skewMs) > options.maxClockSkewMs ? 'fail' : 'ok';
  return { state, detail: `${skewMs >= 0 ? 'ahead of' : 'behind'} the object store by ${Math.abs(Math.round(skewMs / 1000))} s (limit ${options.maxClockSkewMs / 1000} s; timings and S3 signatures depend on it)` };
}

/** `path` when it exists, else its nearest ancestor that does (what a first start creates the folder in). */
async function nearestExisting(path: string): Promise<string> {
  let folder = path;
  while ((await stat(folder).catch(() => undefined)) === undefined && dirname(folder) !== folder) folder = dirname(folder);
  return folder;
}

async function checkDisk(config: GatewayConfig, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  // The outbox folder is created on the first start: check the nearest folder that exists.
  const folder = await nearestExisting(dirname(config.outboxPath));
  await access(folder, constants.W_OK).catch((err: unknown) => {
    throw new Error(`outbox folder ${folder} is not writable: ${(err as Error).message}`);
  });
  const fs = await statfs(folder);
  const free = fs.bavail * fs.bsize;
  const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;
  return { state: free < options.minFreeBytes ? 'fail' : 'ok', detail: `${gib(free)} free in ${folder} (minimum ${gib(options.minFreeBytes)})` };
}

/**
 * The folders the service writes: the DICOM port's receive folder, the watched folder (files
 * move out of it into sent/ and failed/) and the results folder. Each must be a folder the
 * service may write, or one it can create on its first start; a service that cannot would
 * fail to start, or take files it can never move.
 */
async function checkFolders(service: GatewayServiceConfig, config: GatewayConfig): Promise<Omit<CheckResult, 'check'>> {
  const folders: [string, string][] = [];
  if (service.dicom !== undefined) folders.push(['DICOM receive folder', service.dicom.folder ?? `${config.outboxPath}.incoming`]);
  if (service.watchFolder !== undefined) folders.push(['watched folder', service.watchFolder.folder]);
  if (service.results?.folder !== undefined) folders.push(['results folder', service.results.folder]);
  if (folders.length === 0) return { state: 'ok', detail: 'no folders configured' };
  const notes: string[] = [];
  for (const [label, path] of folders) {
    const existing = await nearestExisting(path);
    if (!(await stat(existing)).isDirectory()) return { state: 'fail', detail: `${label} ${path}: ${existing} is not a folder` };
    const writable = await access(existing, constants.W_OK).then(() => true, () => false);
    if (!writable) return { state: 'fail', detail: `${label} ${path}: ${existing} is not writable by this user` };
    notes.push(existing === path ? `${label} ${path}` : `${label} ${path} (created on the first start)`);
  }
  return { state: 'ok', detail: `writable: ${notes.join('; ')}` };
}

async function checkKey(config: GatewayConfig): Promise<Omit<CheckResult, 'check'>> {
  if (!config.deidentification.enabled) return { state: 'warn', detail: 'de-identification is off: runs leave the site as they are' };
  const path = config.deidentification.keyPath ?? `${config.outboxPath}.deid-key`;
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return { state: 'ok', detail: `${path} is created on the first start` };
  if ((info.mode & 0o077) !== 0) return { state: 'fail', detail: `${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600` };
  return { state: 'ok', detail: `${path} present, mode 600` };
}

async function checkDicomPort(service: GatewayServiceConfig, options: DoctorOptions): Promise<Omit<CheckResult, 'check'>> {
  const dicom = service.dicom;
  if (dicom === undefined) return { state: 'ok', detail: 'no DICOM receiver configured' };
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(dicom.port, dicom.host, resolve);
    });
    return { state: 'ok', detail: `${dicom.host}:${dicom.port} is free for AE ${dicom.aeTitle}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      // Taken: fine if it is this gateway already running (it answers C-ECHO as its AE title).
      const host = dicom.host === '0.0.0.0' ? '127.0.0.1' : dicom.host;
      const callingAeTitle = dicom.callingAeTitles?.[0] ?? 'ARTERIA-DOCTOR';
      if (await echoNode({ host, port: dicom.port, calledAeTitle: dicom.aeTitle, callingAeTitle, timeoutMs: options.timeoutMs })) {
        return { state: 'ok', detail: `${host}:${dicom.port} answers C-ECHO as ${dicom.aeTitle} (the gateway is running)` };
      }
      return { state: 'fail', detail: `${dicom.host}:${dicom.port} is taken by another program (it does not answer C-ECHO as ${dicom.aeTitle})` };
    }
    if (code === 'EACCES') return { state: 'fail', detail: `no permission to listen on ${dicom.port} (ports below 1024 need privileges; the service runs unprivileged: use 11112 or a socket capability)` };
    throw err;
  } finally {
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  }
}

/** mqtt.js options that send a ws:// or wss:// broker connection through the site proxy, if one applies. */
function proxied(config: GatewayConfig, url: string): { wsOptions?: { agent: Agent } } {
  const agent = proxyAgentFor(url, config.proxy, process.env);
  return agent === undefined ? {} : { wsOptions: { agent } };
}
