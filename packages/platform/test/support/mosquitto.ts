import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { writeMosquittoFiles, type MosquittoFiles, type MosquittoFilesOptions } from '@arteria/platform';
import { freePort, waitForPort } from '@arteria/testkit';

export interface RunningMosquitto {
  port: number;
  files: MosquittoFiles;
  /** What Mosquitto wrote to stderr so far. */
  log(): string;
  /** SIGHUP: Mosquitto rereads its password file and ACL. */
  reload(): void;
  stop(): Promise<void>;
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
  const child: ChildProcess = spawn('/usr/sbin/mosquitto', ['-c', files.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await Promise.race([waitForPort(port), exited.then(() => Promise.reject(new Error(`mosquitto exited: ${stderr}`)))]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    port,
    files,
    log: () => stderr,
    reload: () => child.kill('SIGHUP'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
