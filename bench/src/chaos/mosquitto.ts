import path from 'node:path';
import { writeMosquittoFiles } from '@arteria/engine-mqtt';
import type { DeviceAddress } from '@arteria/protocol';
import { freePort } from './net.js';
import { ServerProcess } from './server-process.js';

export interface MosquittoOptions {
  dir: string;
  platformSecret: string;
  tenants: ReadonlyMap<string, string>;
  devices: readonly DeviceAddress[];
}

/**
 * A private Mosquitto with persistence, on a free loopback port, from the files Arteria
 * generates for operators (`arteria broker mosquitto`).
 */
export async function startMosquitto(options: MosquittoOptions): Promise<ServerProcess & { url: string; aclFile: string }> {
  const port = await freePort();
  const files = await writeMosquittoFiles({
    dir: path.join(options.dir, 'mosquitto'),
    host: '127.0.0.1',
    plaintext: true,
    port,
    persistenceDir: path.join(options.dir, 'mosquitto', 'data'),
    // It drops root to this user; the current one owns the persistence folder.
    user: process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root'),
    platformSecret: options.platformSecret,
    tenants: options.tenants,
    devices: options.devices,
  });
  const server = Object.assign(new ServerProcess('mosquitto', '/usr/sbin/mosquitto', ['-c', files.conf], port), { url: `mqtt://127.0.0.1:${port}`, aclFile: files.acl });
  await server.start();
  return server;
}
