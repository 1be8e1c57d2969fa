import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { ArteriaError, deviceToken, deviceUsername, isValidId, rotatedDeviceToken, type DeviceAddress } from '@arteria/protocol';
import { serviceToken } from '@arteria/ports';
import { DEFAULT_DYNSEC_PLUGIN, renderDynsecConfig } from './mosquitto-dynsec.js';

const run = promisify(execFile);

/** Platform roles that connect to the broker, each with its own account and ACL. */
export type BrokerServiceRole = 'ingest' | 'worker' | 'dashboard';

/**
 * Mosquitto account name of a platform service. Device accounts are `{tenant}/{device}`
 * and always hold a slash; service accounts never do, so the two cannot collide.
 * (Mosquitto's password file splits on `:`, so the embedded `service:` form is not used.)
 */
export const brokerServiceUsername = (role: BrokerServiceRole): string => `arteria-${role}`;

/** The broker password of a platform service, derived from the platform secret. */
export const brokerServicePassword = (platformSecret: string, role: BrokerServiceRole): string => serviceToken(platformSecret, `cluster-${role}`);

/** A platform service's broker username and password. */
export const brokerServiceCredentials = (platformSecret: string, role: BrokerServiceRole): { username: string; password: string } => ({
  username: brokerServiceUsername(role),
  password: brokerServicePassword(platformSecret, role),
});

/** A device account on the broker, as `arteria cluster` records it. */
export type BrokerDevice = DeviceAddress & {
  /** How often the device's token was rotated; default 0. */
  generation?: number;
  /** The token's issue and expiry times (epoch ms); both absent: a legacy token without an expiry (rotatedDeviceToken). */
  issuedAt?: number;
  expiresAt?: number;
  /** Revoked: no password line, and its dynamic security account is disabled. */
  revoked?: boolean;
};

/** The one token a device's password line holds. */
export function brokerDeviceToken(secret: string, device: BrokerDevice): string {
  const generation = device.generation ?? 0;
  if (device.issuedAt === undefined || device.expiresAt === undefined) return rotatedDeviceToken(secret, device, generation);
  return deviceToken(secret, device, { generation, issuedAt: device.issuedAt, expiresAt: device.expiresAt });
}

/** Mosquitto 2 password hash (`$7$`: PBKDF2-SHA512, 101 rounds, 12-byte salt), as `mosquitto_passwd` writes it. */
export function mosquittoPasswordHash(password: string, salt: Buffer = randomBytes(12)): string {
  const hash = pbkdf2Sync(password, salt, 101, 64, 'sha512');
  return `$7$101$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export interface MosquittoFilesOptions {
  /** Folder the three files are written to. */
  dir: string;
  /** Folder the files will be in where Mosquitto runs (a container's mount); default: `dir`. */
  installDir?: string;
  host: string;
  port: number;
  /** Folder for Mosquitto's persistence file; must be writable by `user`. */
  persistenceDir: string;
  /** OS user Mosquitto runs as (it drops root privileges to this user). */
  user: string;
  platformSecret: string;
  /** Tenant id -> provisioning secret. */
  tenants: ReadonlyMap<string, string>;
  devices: readonly BrokerDevice[];
  /** Messages queued per offline persistent session (ingest sessions hold unacknowledged requests). */
  maxQueuedMessages?: number;
  /** Path of Mosquitto's dynamic security plugin where Mosquitto runs (default: Debian's). */
  dynsecPlugin?: string;
  /**
   * The listener's TLS files (PEM; read here and copied next to the config). The listener
   * speaks TLS unless `plaintext` is set.
   */
  tls?: MosquittoTlsFiles;
  /** A plaintext listener instead of TLS: only on a loopback address, only when asked for. */
  plaintext?: boolean;
}

export interface MosquittoTlsFiles {
  /** CA that signed the broker's certificate and, with client certificates, the devices'. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Certificate revocation list (PEM), checked for client certificates. */
  crlFile?: string;
  /**
   * Devices log in with certificates from Arteria's CA (`arteria pki`): the listener requires
   * one, takes the username from its CN and names the session after it; devices get no
   * password. Platform services log in with passwords on `servicePort` (TLS, no client
   * certificate).
   */
  clientCertificates?: { servicePort: number };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** Whether a listener address is reachable only from this machine. */
export const isLoopback = (host: string): boolean => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

/** TLS file names next to mosquitto.conf. */
const TLS_NAMES = { caFile: 'ca.pem', certFile: 'server.pem', keyFile: 'server-key.pem', crlFile: 'crl.pem' } as const;

/** Refuses a plaintext listener that others could reach, and a listener with neither TLS nor plaintext. */
function checkListener(options: MosquittoFilesOptions): void {
  if (options.plaintext === true) {
    if (options.tls !== undefined) throw new ArteriaError('CONFIG_INVALID', 'the Mosquitto listener is either TLS or plaintext: drop --plaintext or the TLS files');
    if (!isLoopback(options.host)) throw new ArteriaError('CONFIG_INVALID', `a plaintext MQTT listener is allowed on a loopback address only, not ${options.host}: give TLS files (or --pki-dir) instead`);
    return;
  }
  if (options.tls?.clientCertificates !== undefined && options.tls.crlFile === undefined) throw new ArteriaError('CONFIG_INVALID', 'client certificates need a CRL (--tls-crl, or --pki-dir), so a device can be revoked');
  if (options.tls === undefined) throw new ArteriaError('CONFIG_INVALID', 'the Mosquitto listener speaks TLS: give --tls-ca, --tls-cert and --tls-key, or --pki-dir to issue the broker\'s certificate from Arteria\'s CA (see `arteria pki`); for a loopback-only broker, --plaintext');
}

export interface MosquittoFiles {
  conf: string;
  acl: string;
  passwords: string;
  /** The dynamic security plugin's file: each device bound to its client id. */
  dynsec: string;
}

/**
 * The device topic policy as a Mosquitto ACL. `%u` is the username, `{tenant}/{device}`,
 * so each device reaches only its own topics. Ingest receives requests and status through
 * shared subscriptions; workers publish results.
 */
export function renderMosquittoAcl(): string {
  return [
    '# Generated by Arteria: the device topic policy. Devices are {tenant}/{device}.',
    'pattern write arteria/v1/%u/requests',
    'pattern write arteria/v1/%u/status',
    'pattern write arteria/v1/%u/config/reported',
    'pattern read arteria/v1/%u/results',
    'pattern read arteria/v1/%u/config',
    '',
    `user ${brokerServiceUsername('ingest')}`,
    'topic read arteria/v1/+/+/requests',
    'topic read arteria/v1/+/+/status',
    'topic write arteria/v1/+/+/results',
    // Each ingest's self-check: a canary request it publishes and receives back.
    'topic readwrite arteria/v1/~canary/+/requests',
    '',
    `user ${brokerServiceUsername('worker')}`,
    'topic write arteria/v1/+/+/results',
    '',
    `user ${brokerServiceUsername('dashboard')}`,
    'topic read arteria/v1/+/+/status',
    // The dashboard's fleet view shows the configuration version each gateway runs.
    'topic read arteria/v1/+/+/config/reported',
    'topic readwrite arteria/v1/+/+/config',
    '',
  ].join('\n');
}

export function renderMosquittoConf(options: MosquittoFilesOptions, files: { acl: string; passwords: string; dynsec: string; dir: string }): string {
  checkListener(options);
  const tls =
    options.tls === undefined
      ? ['# Plaintext, reachable from this machine only (asked for with --plaintext).']
      : [
          `cafile ${path.posix.join(files.dir, TLS_NAMES.caFile)}`,
          `certfile ${path.posix.join(files.dir, TLS_NAMES.certFile)}`,
          `keyfile ${path.posix.join(files.dir, TLS_NAMES.keyFile)}`,
          'tls_version tlsv1.2',
        ];
  const certificates = options.tls?.clientCertificates;
  const deviceCertificates =
    certificates === undefined
      ? []
      : [
          // The session is named after the certificate's identity, whatever client id is sent:
          // no device can reach another identity's session. (Mosquitto skips the password
          // check, and with it the dynamic security client id check, for certificate logins.)
          'require_certificate true',
          'use_identity_as_username true',
          'use_username_as_clientid true',
          `crlfile ${path.posix.join(files.dir, TLS_NAMES.crlFile)}`,
          '',
          '# Platform services: TLS without a client certificate, passwords.',
          `listener ${certificates.servicePort} ${options.host}`,
          'protocol mqtt',
          ...tls,
          '',
        ];
  return [
    '# Generated by Arteria.',
    `listener ${options.port} ${options.host}`,
    'protocol mqtt',
    ...tls,
    ...deviceCertificates,
    // Without it a QoS 1 request/response over two hops waits on Nagle + delayed ACK (~40 ms).
    'set_tcp_nodelay true',
    'allow_anonymous false',
    `password_file ${files.passwords}`,
    `acl_file ${files.acl}`,
    // Binds each device to its client id: another identity's id is refused at CONNECT,
    // before Mosquitto resumes or takes over the session (see docs/identity.md).
    `plugin ${options.dynsecPlugin ?? DEFAULT_DYNSEC_PLUGIN}`,
    `plugin_opt_config_file ${files.dynsec}`,
    `user ${options.user}`,
    'persistence true',
    `persistence_location ${options.persistenceDir.endsWith('/') ? options.persistenceDir : `${options.persistenceDir}/`}`,
    'autosave_interval 1',
    // Sessions kept by clients that ask for it (gateways' result subscriptions) survive restarts.
    'persistent_client_expiration 1d',
    `max_queued_messages ${options.maxQueuedMessages ?? 10_000}`,
    'max_inflight_messages 100',
    'max_packet_size 262144',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    '',
  ].join('\n');
}

/**
 * The password file. Mosquitto compares a password with its hash only, so a token's expiry
 * is applied here: an expired token (and a revoked device) gets no line, from the next time
 * the file is written (each `arteria cluster device` command, and `cluster up`).
 */
export function renderPasswordFile(options: Pick<MosquittoFilesOptions, 'platformSecret' | 'tenants' | 'devices' | 'tls'>, now: number = Date.now()): string {
  const lines: string[] = [];
  for (const role of ['ingest', 'worker', 'dashboard'] as const) {
    lines.push(`${brokerServiceUsername(role)}:${mosquittoPasswordHash(brokerServicePassword(options.platformSecret, role))}`);
  }
  // With client certificates a device's certificate is its only credential.
  const devices = options.tls?.clientCertificates === undefined ? options.devices : [];
  for (const device of devices) {
    if (device.revoked === true || (device.expiresAt !== undefined && device.expiresAt <= now)) continue;
    if (!isValidId(device.tenant) || !isValidId(device.device)) throw new ArteriaError('CONFIG_INVALID', `device ${device.tenant}/${device.device}: ids are lowercase letters, digits, - and _`);
    const secret = options.tenants.get(device.tenant);
    if (secret === undefined) throw new ArteriaError('CONFIG_INVALID', `device ${device.tenant}/${device.device}: no secret for tenant ${device.tenant}`);
    lines.push(`${deviceUsername(device)}:${mosquittoPasswordHash(brokerDeviceToken(secret, device))}`);
  }
  return `${lines.join('\n')}\n`;
}

/** uid and gid of an OS user, from the system's user database (NSS, so LDAP users count too). */
export async function osUser(name: string): Promise<{ uid: number; gid: number }> {
  let line: string;
  try {
    line = (await run('getent', ['passwd', name])).stdout;
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `broker user ${JSON.stringify(name)} does not exist on this machine: install Mosquitto (its package creates the user) or pass --user <an existing user>`, { cause: err });
  }
  const [, , uid = '', gid = ''] = line.trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * The first folder on the way to `file` that `user` may not enter (no search permission for
 * it as owner, group or other), or undefined when it can reach the file. Mosquitto running as
 * its own user needs to reach its password file and persistence folder.
 */
export async function blockedFolderFor(user: { uid: number; gid: number }, file: string): Promise<string | undefined> {
  let dir = path.dirname(path.resolve(file));
  const chain: string[] = [];
  for (;;) {
    chain.unshift(dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const folder of chain) {
    const info = await stat(folder);
    const bit = info.uid === user.uid ? 0o100 : info.gid === user.gid ? 0o010 : 0o001;
    if ((info.mode & bit) === 0) return folder;
  }
  return undefined;
}

/**
 * Writes mosquitto.conf, the ACL, the password file, the dynamic security file and copies of
 * the TLS files (all but the ACL mode 0600) into `options.dir`.
 * Run as root for a local Mosquitto, the password file and persistence folder are given
 * to `options.user`, the account Mosquitto drops to.
 */
export async function writeMosquittoFiles(options: MosquittoFilesOptions): Promise<MosquittoFiles> {
  checkListener(options);
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true });
  if (options.installDir === undefined) await mkdir(options.persistenceDir, { recursive: true });
  const files = { conf: path.join(dir, 'mosquitto.conf'), acl: path.join(dir, 'acl'), passwords: path.join(dir, 'passwords'), dynsec: path.join(dir, 'dynamic-security.json') };
  const installed = options.installDir ?? dir;
  await writeFile(files.acl, renderMosquittoAcl());
  await writeFile(files.passwords, renderPasswordFile(options), { mode: 0o600 });
  await chmod(files.passwords, 0o600);
  await writeFile(files.dynsec, renderDynsecConfig(options.platformSecret, options.devices), { mode: 0o600 });
  await chmod(files.dynsec, 0o600);
  const owned = [files.passwords, files.dynsec];
  if (options.tls !== undefined) {
    for (const field of ['caFile', 'certFile', 'keyFile', 'crlFile'] as const) {
      const source = options.tls[field];
      if (source === undefined) continue;
      const target = path.join(dir, TLS_NAMES[field]);
      try {
        await copyFile(source, target);
      } catch (err) {
        throw new ArteriaError('CONFIG_INVALID', `TLS file ${source} cannot be read: ${(err as Error).message}`, { cause: err });
      }
      await chmod(target, 0o600);
      owned.push(target);
    }
  }
  // Mosquitto started as root drops to `user` before it opens the password file: that user
  // must own it (and the persistence folder), which stays unreadable to everyone else.
  if (options.installDir === undefined && process.getuid?.() === 0 && options.user !== 'root') {
    const owner = await osUser(options.user);
    for (const file of owned) await chown(file, owner.uid, owner.gid);
    await chown(options.persistenceDir, owner.uid, owner.gid);
  }
  await writeFile(files.conf, renderMosquittoConf(options, { acl: path.posix.join(installed, 'acl'), passwords: path.posix.join(installed, 'passwords'), dynsec: path.posix.join(installed, 'dynamic-security.json'), dir: installed }));
  return files;
}
