import { pbkdf2Sync, randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { ArteriaError, deviceClientId, deviceUsername, type DeviceAddress } from '@arteria/protocol';
import { serviceToken } from '@arteria/ports';
import type { MqttTls } from './mqtt-tls.js';

/**
 * Mosquitto's dynamic security plugin binds each device account to its one client id.
 * It runs next to the password file and the ACL: for a device it knows, it refuses a
 * CONNECT whose client id is not the bound one (before Mosquitto looks the session up, so
 * the session and its holder are untouched), then defers the password to the password file
 * and every publish and subscribe to the ACL (its default access is "defer").
 */

/** Where Debian and Ubuntu install the plugin; the eclipse-mosquitto image has it in /usr/lib. */
export const DEFAULT_DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

/** The dynamic security account that may add device bindings to a running Mosquitto. */
export const BROKER_ADMIN_USERNAME = 'arteria-broker-admin';

/** The broker admin's password, derived from the platform secret. */
export const brokerAdminPassword = (platformSecret: string): string => serviceToken(platformSecret, 'cluster-broker-admin');

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';

interface DynsecClient {
  username: string;
  clientid?: string;
  password?: string;
  salt?: string;
  iterations?: number;
  roles: { rolename: string }[];
  /** A disabled client is refused at CONNECT, whatever its password. */
  disabled?: boolean;
}

/** A device's entry: no password (the password file checks it), its client id fixed; a revoked device disabled. */
const deviceEntry = (device: DeviceAddress & { revoked?: boolean }): DynsecClient => ({
  username: deviceUsername(device),
  clientid: deviceClientId(device),
  roles: [],
  ...(device.revoked === true ? { disabled: true } : {}),
});

/**
 * The plugin's configuration file: every device bound to its client id, and the admin account
 * (PBKDF2-SHA512, 101 rounds, 12-byte salt, as `mosquitto_ctrl dynsec init` writes it).
 */
export function renderDynsecConfig(platformSecret: string, devices: readonly (DeviceAddress & { revoked?: boolean })[], salt: Buffer = randomBytes(12)): string {
  const admin: DynsecClient = {
    username: BROKER_ADMIN_USERNAME,
    password: pbkdf2Sync(brokerAdminPassword(platformSecret), salt, 101, 64, 'sha512').toString('base64'),
    salt: salt.toString('base64'),
    iterations: 101,
    roles: [{ rolename: 'arteria-broker-admin' }],
  };
  const control = `${CONTROL_TOPIC}/#`;
  return `${JSON.stringify(
    {
      clients: [admin, ...devices.map(deviceEntry)],
      roles: [
        {
          rolename: 'arteria-broker-admin',
          acls: [
            { acltype: 'publishClientSend', topic: control, allow: true },
            { acltype: 'publishClientReceive', topic: control, allow: true },
            { acltype: 'subscribePattern', topic: control, allow: true },
          ],
        },
      ],
      groups: [],
      // false = defer to the ACL file for every client the plugin has no role for.
      defaultACLAccess: { publishClientSend: false, publishClientReceive: false, subscribe: false, unsubscribe: false },
    },
    null,
    2,
  )}\n`;
}

export interface BrokerAdminConnection {
  url: string;
  platformSecret: string;
  tls?: MqttTls;
}

/**
 * Sends commands to a running Mosquitto's dynamic security plugin (it reads its file only at
 * start) and fails with CONFIG_INVALID on an answer with an error other than `tolerated`.
 */
async function dynsecCommands(connection: BrokerAdminConnection, commands: Record<string, unknown>[], tolerated: readonly string[], what: string): Promise<void> {
  if (commands.length === 0) return;
  const client = await mqtt.connectAsync(connection.url, {
    username: BROKER_ADMIN_USERNAME,
    password: brokerAdminPassword(connection.platformSecret),
    clientId: `${BROKER_ADMIN_USERNAME}-${randomBytes(4).toString('hex')}`,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...connection.tls,
  });
  try {
    const answer = new Promise<Buffer>((resolve) => client.once('message', (_topic, payload) => resolve(payload)));
    await client.subscribeAsync(`${CONTROL_TOPIC}/response`, { qos: 1 });
    await client.publishAsync(CONTROL_TOPIC, JSON.stringify({ commands }), { qos: 1 });
    const response = JSON.parse((await answer).toString()) as { responses?: { command: string; error?: string }[] };
    const failed = (response.responses ?? []).filter((r) => r.error !== undefined && !tolerated.includes(r.error));
    if (failed.length > 0) throw new ArteriaError('CONFIG_INVALID', `Mosquitto refused to ${what}: ${failed.map((r) => r.error).join('; ')}`);
  } finally {
    await client.endAsync();
  }
}

/**
 * Binds devices added after Mosquitto started: one createClient per device over the
 * plugin's control topic. A device already bound is left as it is.
 */
export async function bindDevicesOnBroker(connection: BrokerAdminConnection, devices: readonly DeviceAddress[]): Promise<void> {
  await dynsecCommands(connection, devices.map((device) => ({ command: 'createClient', ...deviceEntry(device) })), ['Client already exists'], 'bind devices');
}

/**
 * Revokes devices on a running Mosquitto: the plugin disables their accounts, which
 * disconnects a device that is connected and refuses its every later CONNECT, whatever
 * its password, until it is enabled again.
 */
export async function disableDevicesOnBroker(connection: BrokerAdminConnection, devices: readonly DeviceAddress[]): Promise<void> {
  await dynsecCommands(connection, devices.map((device) => ({ command: 'disableClient', username: deviceUsername(device) })), [], 'disable devices');
}

/** Lifts a revocation on a running Mosquitto: the device's account may log in again (with a password the password file holds). */
export async function enableDevicesOnBroker(connection: BrokerAdminConnection, devices: readonly DeviceAddress[]): Promise<void> {
  await dynsecCommands(connection, devices.map((device) => ({ command: 'enableClient', username: deviceUsername(device) })), [], 'enable devices');
}
