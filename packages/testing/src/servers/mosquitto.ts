import path from 'node:path';
import { brokerServiceCredentials, writeMosquittoFiles, type MosquittoFiles, type MosquittoFilesOptions } from '@arteria/engine-mqtt';
import { legacyDeviceToken, type DeviceAddress } from '@arteria/protocol';
import { SUITE_DEVICES, SUITE_PLATFORM_SECRET, SUITE_TENANTS, type BrokerUnderTest } from '../attacks/takeover-suite.js';
import { freePort, retryOnAddressInUse } from '../ports.js';
import { spawnMosquitto, type MosquittoProcess } from './spawn-mosquitto.js';

/** What a test chooses of the generated files; the kit picks the port and the paths. */
type MosquittoStartOptions = Omit<MosquittoFilesOptions, 'dir' | 'host' | 'port' | 'persistenceDir' | 'user'> & Partial<Pick<MosquittoFilesOptions, 'host'>>;

export interface RunningMosquitto extends MosquittoProcess {
  port: number;
  files: MosquittoFiles;
}

/**
 * A real Mosquitto on a free loopback port, run from the files `arteria broker mosquitto`
 * writes (into `dir`), as the current user.
 */
export async function startMosquitto(dir: string, options: MosquittoStartOptions): Promise<RunningMosquitto> {
  // Another test may bind the port between its pick and Mosquitto's bind: pick again then.
  return retryOnAddressInUse(() => startMosquittoOnce(dir, options));
}

async function startMosquittoOnce(dir: string, options: MosquittoStartOptions): Promise<RunningMosquitto> {
  const port = await freePort();
  const files = await writeMosquittoFiles({
    host: '127.0.0.1',
    ...(options.tls === undefined && { plaintext: true }),
    ...options,
    dir,
    port,
    persistenceDir: path.join(dir, 'data'),
    // Run as root, it drops to this user; the current one owns the files.
    user: process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root'),
  });
  return { port, files, ...(await spawnMosquitto(files.conf, port)) };
}

/**
 * Mosquitto from the generated files for the attacker suite's tenants and devices (recorded
 * without an expiry, so the password file holds their legacy tokens), and the suite's view
 * of it. With `tls`, the listener speaks TLS and every client trusts `tls.ca`.
 */
export async function startSuiteMosquitto(dir: string, tls?: { caFile: string; certFile: string; keyFile: string; ca: Buffer }): Promise<{ broker: RunningMosquitto; target: BrokerUnderTest }> {
  const broker = await startMosquitto(dir, { platformSecret: SUITE_PLATFORM_SECRET, tenants: SUITE_TENANTS, devices: SUITE_DEVICES, ...(tls === undefined ? {} : { tls: { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile } }) });
  const worker = brokerServiceCredentials(SUITE_PLATFORM_SECRET, 'worker');
  const ingest = brokerServiceCredentials(SUITE_PLATFORM_SECRET, 'ingest');
  const target: BrokerUnderTest = {
    url: `${tls === undefined ? 'mqtt' : 'mqtts'}://127.0.0.1:${broker.port}`,
    ...(tls === undefined ? {} : { tls: () => ({ ca: tls.ca }) }),
    password: suiteLegacyPassword,
    service: { ...worker, clientIdPrefix: worker.username, protocolVersion: 5 },
    ingestClientIdPrefix: ingest.username,
    ingestCredentials: ingest,
  };
  return { broker, target };
}

/** The token a suite device logs in to Mosquitto with: the password file holds its legacy token. */
export const suiteLegacyPassword = (device: DeviceAddress): string => legacyDeviceToken(SUITE_TENANTS.get(device.tenant) ?? 'unknown-tenant-secret', device);
