import path from 'node:path';
import { writeMosquittoFiles, type MosquittoFiles, type MosquittoFilesOptions } from '@arteria/engine-mqtt';
import { freePort } from '../ports.js';
import { spawnMosquitto, type MosquittoProcess } from './spawn-mosquitto.js';

export interface RunningMosquitto extends MosquittoProcess {
  port: number;
  files: MosquittoFiles;
}

/**
 * A real Mosquitto on a free loopback port, run from the files `arteria broker mosquitto`
 * writes (into `dir`), as the current user.
 */
export async function startMosquitto(dir: string, options: Omit<MosquittoFilesOptions, 'dir' | 'host' | 'port' | 'persistenceDir' | 'user'> & Partial<Pick<MosquittoFilesOptions, 'host'>>): Promise<RunningMosquitto> {
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
