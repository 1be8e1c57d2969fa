import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type MqttClient } from 'mqtt';
import { usageError } from '@arteria/command';
import { serviceClientIdPrefix, serviceToken, serviceUsername } from '@arteria/ports';
import {
  ArteriaError,
  ConfigV1,
  ReportedConfigV1,
  StatusV1,
  allDevicesFilter,
  decodePayload,
  deviceTopic,
  encodePayload,
  isValidId,
  parseDeviceTopic,
} from '@arteria/protocol';
import { int } from './args.js';
import { readSecrets } from './secrets.js';

export const DEVICES_HELP = `arteria devices list [options]                      devices, gateway versions, last seen, config versions
arteria devices show <tenant>/<device> [options]     status, desired and reported config of one device
arteria devices configure <tenant>/<device> --file <config.json> [options]
                                                     push a desired config (version: next, unless the file sets one)
                                                     and wait for the gateway's report; exit 1 if it was not applied
  --data-dir <path>       embedded installation whose platform secret to use (default .arteria)
  --platform-secret <s>   the platform secret instead (cluster installations)
  --mqtt-url <url>        broker URL (default mqtt://127.0.0.1:18830)
  --wait-s <n>            configure: how long to wait for the report (default 30)
  --json                  print JSON`;

const SERVICE = 'devices-cli';
/** Retained messages arrive right after subscribing; this long without one means we have them all. */
const SETTLE_MS = 300;

interface DeviceView {
  tenant: string;
  device: string;
  status?: StatusV1;
  desired?: ConfigV1;
  reported?: ReportedConfigV1;
}

const OPTIONS = {
  'data-dir': { type: 'string' },
  'platform-secret': { type: 'string' },
  'mqtt-url': { type: 'string' },
  file: { type: 'string' },
  'wait-s': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export async function devicesCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !['list', 'show', 'configure'].includes(sub)) throw usageError(`unknown devices command ${JSON.stringify(sub ?? '')}`);
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
  const secret = values['platform-secret'] ?? (await readSecrets(path.join(path.resolve(values['data-dir'] ?? '.arteria'), 'secrets.json'))).platformSecret;
  const client = await connectService(values['mqtt-url'] ?? 'mqtt://127.0.0.1:18830', secret);
  try {
    const views = await snapshot(client);
    if (sub === 'list') return list(views, values.json);
    const key = positionals[0] ?? '';
    const [tenant = '', device = ''] = key.split('/');
    if (!isValidId(tenant) || !isValidId(device)) throw usageError(`name the device as <tenant>/<device>, got ${JSON.stringify(key)}`);
    const view = views.get(`${tenant}/${device}`) ?? { tenant, device };
    if (sub === 'show') {
      process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
      return 0;
    }
    if (sub === 'configure') {
      if (values.file === undefined) throw usageError('configure needs --file <config.json>');
      return await configure(client, view, values.file, int(values['wait-s'] ?? '30', '--wait-s') * 1000, values.json);
    }
    throw usageError(`unknown devices command ${JSON.stringify(sub)}`);
  } finally {
    await client.endAsync();
  }
}

async function connectService(url: string, secret: string): Promise<MqttClient> {
  const client = connect(url, {
    protocolVersion: 4,
    clientId: `${serviceClientIdPrefix(SERVICE)}-${process.pid}-${Date.now().toString(36)}`,
    clean: true,
    username: serviceUsername(SERVICE),
    password: serviceToken(secret, SERVICE),
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (err) => reject(new ArteriaError('CONFIG_INVALID', `cannot connect to ${url} as a platform service: ${err.message}`, { cause: err })));
  });
  return client;
}

/**
 * Every device's retained status, desired and reported config. The quiet period starts
 * only once the broker acknowledged the subscription: counted from before it, a slow
 * SUBACK ended the wait before the retained config arrived, and `configure` numbered its
 * version from nothing (reusing one already given).
 */
async function snapshot(client: MqttClient): Promise<Map<string, DeviceView>> {
  const views = new Map<string, DeviceView>();
  let timer: NodeJS.Timeout | undefined;
  let restart: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => {
    restart = (): void => {
      clearTimeout(timer);
      timer = setTimeout(resolve, SETTLE_MS);
    };
    client.on('message', (topic, payload) => {
      restart();
      let parsed;
      try {
        parsed = parseDeviceTopic(topic);
      } catch {
        return;
      }
      const key = `${parsed.tenant}/${parsed.device}`;
      const view = views.get(key) ?? { tenant: parsed.tenant, device: parsed.device };
      views.set(key, view);
      if (payload.length === 0) return;
      try {
        if (parsed.kind === 'status') view.status = decodePayload(StatusV1, payload);
        else if (parsed.kind === 'config') view.desired = decodePayload(ConfigV1, payload);
        else if (parsed.kind === 'config/reported') view.reported = decodePayload(ReportedConfigV1, payload);
      } catch {
        // a malformed retained message says nothing about the device; show what is valid
      }
    });
  });
  await client.subscribeAsync({ [allDevicesFilter('status')]: { qos: 1 }, [allDevicesFilter('config')]: { qos: 1 }, [allDevicesFilter('config/reported')]: { qos: 1 } });
  restart();
  await settled;
  client.removeAllListeners('message');
  return views;
}

function list(views: Map<string, DeviceView>, json: boolean): number {
  const rows = [...views.values()].sort((a, b) => `${a.tenant}/${a.device}`.localeCompare(`${b.tenant}/${b.device}`));
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const lines = [['DEVICE', 'STATE', 'LAST SEEN', 'GATEWAY', 'DESIRED', 'ACTIVE', 'LAST REPORT']];
  for (const v of rows) {
    const report = v.reported === undefined ? '-' : `v${v.reported.version} ${v.reported.applied ? 'applied' : `refused: ${(v.reported.error ?? '').slice(0, 60)}`}`;
    lines.push([
      `${v.tenant}/${v.device}`,
      v.status?.state ?? '-',
      v.status ? new Date(v.status.at).toISOString() : '-',
      v.status?.gatewayVersion ?? '-',
      v.desired ? `v${v.desired.version}` : '-',
      v.reported?.activeVersion === undefined ? '-' : `v${v.reported.activeVersion}`,
      report,
    ]);
  }
  const widths = lines[0]?.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length))) ?? [];
  for (const l of lines) process.stdout.write(`${l.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
  return 0;
}

async function configure(client: MqttClient, view: DeviceView, file: string, waitMs: number, json: boolean): Promise<number> {
  const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  // Versions only go up and are never given twice: the next one is above every version the device was offered or reported.
  const highest = Math.max(view.desired?.version ?? 0, view.reported?.version ?? 0, view.reported?.activeVersion ?? 0);
  if (typeof raw.version === 'number' && raw.version <= highest) {
    throw new ArteriaError('CONFIG_STALE', `${file} sets version ${raw.version}, but ${view.tenant}/${view.device} has seen version ${highest}; remove "version" (the next one is ${highest + 1}) or raise it`);
  }
  const config = ConfigV1.safeParse({ v: 1, version: highest + 1, ...raw });
  if (!config.success) {
    const issue = config.error.issues[0];
    throw new ArteriaError('CONFIG_INVALID', `${file}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  const desired = config.data;
  const reportedTopic = deviceTopic(view, 'config/reported');
  const report = new Promise<ReportedConfigV1 | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), waitMs);
    client.on('message', (topic, payload) => {
      if (topic !== reportedTopic || payload.length === 0) return;
      try {
        const reported = decodePayload(ReportedConfigV1, payload);
        if (reported.version !== desired.version) return;
        clearTimeout(timer);
        resolve(reported);
      } catch {
        // not a report: keep waiting
      }
    });
  });
  await client.subscribeAsync(reportedTopic, { qos: 1 });
  await client.publishAsync(deviceTopic(view, 'config'), encodePayload(desired), { qos: 1, retain: true });
  const reported = await report;
  if (json) process.stdout.write(`${JSON.stringify({ desired, reported: reported ?? null }, null, 2)}\n`);
  else if (reported === undefined) process.stdout.write(`${view.tenant}/${view.device}: config v${desired.version} published (retained); no report within ${waitMs / 1000} s (the device applies it when it connects)\n`);
  else if (reported.applied) process.stdout.write(`${view.tenant}/${view.device}: config v${desired.version} applied\n`);
  else process.stdout.write(`${view.tenant}/${view.device}: config v${desired.version} NOT applied (${reported.code ?? 'no code'}: ${reported.error ?? 'no reason given'}); active: v${reported.activeVersion ?? '-'}\n`);
  return reported?.applied === true ? 0 : 1;
}
