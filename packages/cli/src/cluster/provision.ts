import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { bindDevicesOnBroker, brokerDeviceToken, disableDevicesOnBroker, enableDevicesOnBroker, writeMosquittoFiles, type BrokerDevice } from '@arteria/engine-mqtt';
import { ArteriaError, DEVICE_TOKEN_TTL_MS, ID_PATTERN, isValidId, type DeviceAddress } from '@arteria/protocol';
import { reinstateDevice, revokeDevice } from '@arteria/ports';
import { readSecrets, type EmbeddedSecrets } from '../secrets.js';
import { readStoreCredentials } from '../store-command.js';
import { isOurs, type ClusterPaths, type ClusterState } from './layout.js';

const id = z.string().regex(ID_PATTERN);
const DevicesFile = z.strictObject({
  devices: z.array(
    z.strictObject({
      tenant: id,
      device: id,
      generation: z.number().int().min(0),
      /** The current token's issue and expiry (epoch ms); absent in files from before tokens expired (a legacy token). */
      issuedAt: z.number().int().min(0).optional(),
      expiresAt: z.number().int().min(0).optional(),
      /** When the device was revoked; absent: it is not. */
      revokedAt: z.number().int().min(0).optional(),
    }),
  ),
});
export type ProvisionedDevice = z.infer<typeof DevicesFile>['devices'][number];

export async function readDevices(paths: ClusterPaths): Promise<ProvisionedDevice[]> {
  try {
    return DevicesFile.parse(JSON.parse(await readFile(paths.devices, 'utf8'))).devices;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ArteriaError('CONFIG_INVALID', `${paths.devices}: ${(err as Error).message}`, { cause: err });
  }
}

async function writeJsonPrivate(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

export function parseDeviceName(name: string): DeviceAddress {
  const [tenant = '', device = '', ...extra] = name.split('/');
  if (extra.length > 0 || !isValidId(tenant) || !isValidId(device)) throw new ArteriaError('CONFIG_INVALID', `name the device as <tenant>/<device> (lowercase letters, digits, - and _), got ${JSON.stringify(name)}`);
  return { tenant, device };
}

/** Adds a tenant with a new provisioning secret. */
export async function addTenant(paths: ClusterPaths, tenant: string): Promise<void> {
  if (!isValidId(tenant)) throw new ArteriaError('CONFIG_INVALID', `tenant ids are lowercase letters, digits, - and _; got ${JSON.stringify(tenant)}`);
  const secrets = await readSecrets(paths.secrets);
  if (secrets.tenants[tenant] !== undefined) throw new ArteriaError('CONFIG_INVALID', `tenant ${tenant} already exists in ${paths.secrets}`);
  await writeJsonPrivate(paths.secrets, { ...secrets, tenants: { ...secrets.tenants, [tenant]: randomBytes(24).toString('base64url') } });
}

export type ProvisionMode = 'add' | 'rotate' | 'reinstate';

/**
 * Registers a device, rotates its token (the next generation) or reinstates a revoked
 * device with a new token; rewrites the broker's password file and has a running Mosquitto
 * reload it. The token expires after `ttlMs` (default 90 days). Returns the device's token.
 */
export async function provisionDevice(paths: ClusterPaths, state: ClusterState, address: DeviceAddress, mode: ProvisionMode, ttlMs: number = DEVICE_TOKEN_TTL_MS): Promise<{ token: string; generation: number; expiresAt: number }> {
  const secrets = await readSecrets(paths.secrets);
  const secret = secrets.tenants[address.tenant];
  if (secret === undefined) throw new ArteriaError('CONFIG_INVALID', `no tenant ${address.tenant}: add it first with \`arteria cluster tenant add ${address.tenant} --dir ${paths.root}\``);
  const devices = await readDevices(paths);
  const existing = devices.find((d) => d.tenant === address.tenant && d.device === address.device);
  const issuedAt = Date.now();
  const expiresAt = issuedAt + ttlMs;
  let entry: ProvisionedDevice;
  if (mode === 'add') {
    if (existing !== undefined) throw new ArteriaError('CONFIG_INVALID', `device ${address.tenant}/${address.device} already exists; \`arteria cluster device rotate-token\` issues a new token`);
    entry = { ...address, generation: 0, issuedAt, expiresAt };
    devices.push(entry);
  } else {
    if (existing === undefined) throw new ArteriaError('CONFIG_INVALID', `no device ${address.tenant}/${address.device} in ${paths.devices}`);
    if (mode === 'rotate' && existing.revokedAt !== undefined) throw new ArteriaError('DEVICE_REVOKED', `device ${address.tenant}/${address.device} is revoked: \`arteria cluster device reinstate\` gives it a new token and lifts the revocation`);
    // A reinstated device gets a new generation too: the token it held when revoked stays dead.
    existing.generation += 1;
    existing.issuedAt = issuedAt;
    existing.expiresAt = expiresAt;
    delete existing.revokedAt;
    entry = existing;
  }
  await writeJsonPrivate(paths.devices, { devices });
  await writeBrokerFiles(paths, state, secrets, devices);
  if (mode === 'reinstate') await reinstateDevice(paths.revocations, address);
  await reloadBroker(paths, state, secrets.platformSecret, mode === 'add' ? { bind: address } : mode === 'reinstate' ? { enable: address } : {});
  return { token: brokerDeviceToken(secret, entry), generation: entry.generation, expiresAt };
}

/**
 * Revokes one device, leaving the tenant's other devices and its secret as they are: the
 * device goes on the revocation list (ingest refuses its requests), loses its password
 * line, and a running Mosquitto disables its account, which disconnects it at once.
 */
export async function revokeProvisionedDevice(paths: ClusterPaths, state: ClusterState, address: DeviceAddress, reason?: string): Promise<{ revokedAt: number }> {
  const secrets = await readSecrets(paths.secrets);
  const devices = await readDevices(paths);
  const existing = devices.find((d) => d.tenant === address.tenant && d.device === address.device);
  if (existing === undefined) throw new ArteriaError('CONFIG_INVALID', `no device ${address.tenant}/${address.device} in ${paths.devices}`);
  const { revokedAt } = await revokeDevice(paths.revocations, address, reason);
  existing.revokedAt ??= revokedAt;
  await writeJsonPrivate(paths.devices, { devices });
  await writeBrokerFiles(paths, state, secrets, devices);
  await reloadBroker(paths, state, secrets.platformSecret, { disable: address });
  return { revokedAt: existing.revokedAt };
}

export async function writeBrokerFiles(paths: ClusterPaths, state: Pick<ClusterState, 'mqttUrl' | 'host' | 'brokerUser'>, secrets: EmbeddedSecrets, devices: readonly ProvisionedDevice[]): Promise<void> {
  await writeMosquittoFiles({
    dir: paths.broker,
    host: state.host,
    port: Number(new URL(state.mqttUrl).port),
    // One machine: loopback only (a non-loopback --host is refused until the cluster issues TLS files).
    plaintext: true,
    persistenceDir: paths.brokerData,
    user: state.brokerUser,
    platformSecret: secrets.platformSecret,
    tenants: new Map(Object.entries(secrets.tenants)),
    devices: devices.map((d): BrokerDevice => ({ ...d, revoked: d.revokedAt !== undefined })),
  });
}

/**
 * SIGHUP: Mosquitto reloads its password file and ACL; connected clients stay connected.
 * Its dynamic security plugin reads its file only at start, so changes to device accounts
 * go over the plugin's control topic first: a new device is bound to its client id before
 * its password works, a revoked one is disabled (and disconnected) before its line goes.
 */
async function reloadBroker(paths: ClusterPaths, state: ClusterState, platformSecret: string, change: { bind?: DeviceAddress; disable?: DeviceAddress; enable?: DeviceAddress }): Promise<void> {
  const broker = state.processes.find((p) => p.name === 'mosquitto');
  if (broker === undefined || !(await isOurs(broker.pid, paths.root))) return;
  const connection = { url: state.mqttUrl, platformSecret };
  if (change.bind !== undefined) await bindDevicesOnBroker(connection, [change.bind]);
  if (change.disable !== undefined) await disableDevicesOnBroker(connection, [change.disable]);
  if (change.enable !== undefined) await enableDevicesOnBroker(connection, [change.enable]);
  process.kill(broker.pid, 'SIGHUP');
}

/** The device's `arteria-gateway` service file (its `gateway` section is what `arteria gateway send --config` reads). */
export async function writeGatewayConfig(paths: ClusterPaths, state: ClusterState, address: DeviceAddress, token: string): Promise<string> {
  const s3 = await readStoreCredentials(paths.storeCredentials);
  await mkdir(paths.gateways, { recursive: true, mode: 0o700 });
  const file = path.join(paths.gateways, `${address.tenant}.${address.device}.json`);
  await writeJsonPrivate(file, {
    gateway: {
      tenant: address.tenant,
      device: address.device,
      token,
      mqttUrl: state.mqttUrl,
      s3: { endpoint: state.s3Endpoint, bucket: state.bucket, region: 'us-east-1', ...s3 },
      outboxPath: path.join(paths.gateways, `${address.tenant}.${address.device}.outbox.db`),
      resendIntervalMs: 5_000,
    },
  });
  return file;
}
