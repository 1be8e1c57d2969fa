import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { bindDevicesOnBroker, writeMosquittoFiles } from '@arteria/engine-mqtt';
import { ArteriaError, ID_PATTERN, isValidId, rotatedDeviceToken, type DeviceAddress } from '@arteria/protocol';
import { readSecrets, type EmbeddedSecrets } from '../secrets.js';
import { readStoreCredentials } from '../store-command.js';
import { isOurs, type ClusterPaths, type ClusterState } from './layout.js';

const id = z.string().regex(ID_PATTERN);
const DevicesFile = z.strictObject({
  devices: z.array(z.strictObject({ tenant: id, device: id, generation: z.number().int().min(0) })),
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

/**
 * Registers a device (or rotates its token: the next generation), rewrites the broker's
 * password file and has a running Mosquitto reload it. Returns the device's token.
 */
export async function provisionDevice(paths: ClusterPaths, state: ClusterState, address: DeviceAddress, mode: 'add' | 'rotate'): Promise<{ token: string; generation: number }> {
  const secrets = await readSecrets(paths.secrets);
  const secret = secrets.tenants[address.tenant];
  if (secret === undefined) throw new ArteriaError('CONFIG_INVALID', `no tenant ${address.tenant}: add it first with \`arteria cluster tenant add ${address.tenant} --dir ${paths.root}\``);
  const devices = await readDevices(paths);
  const existing = devices.find((d) => d.tenant === address.tenant && d.device === address.device);
  let generation: number;
  if (mode === 'add') {
    if (existing !== undefined) throw new ArteriaError('CONFIG_INVALID', `device ${address.tenant}/${address.device} already exists; \`arteria cluster device rotate-token\` issues a new token`);
    generation = 0;
    devices.push({ ...address, generation });
  } else {
    if (existing === undefined) throw new ArteriaError('CONFIG_INVALID', `no device ${address.tenant}/${address.device} in ${paths.devices}`);
    existing.generation += 1;
    generation = existing.generation;
  }
  await writeJsonPrivate(paths.devices, { devices });
  await writeBrokerFiles(paths, state, secrets, devices);
  await reloadBroker(paths, state, mode === 'add' ? { platformSecret: secrets.platformSecret, device: address } : undefined);
  return { token: rotatedDeviceToken(secret, address, generation), generation };
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
    devices,
  });
}

/**
 * SIGHUP: Mosquitto reloads its password file and ACL; connected clients stay connected.
 * Its dynamic security plugin reads its file only at start, so a new device is bound to its
 * client id over the plugin's control topic first: it never has a moment without the binding.
 */
async function reloadBroker(paths: ClusterPaths, state: ClusterState, added?: { platformSecret: string; device: DeviceAddress }): Promise<void> {
  const broker = state.processes.find((p) => p.name === 'mosquitto');
  if (broker === undefined || !(await isOurs(broker.pid, paths.root))) return;
  if (added !== undefined) await bindDevicesOnBroker({ url: state.mqttUrl, platformSecret: added.platformSecret }, [added.device]);
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
