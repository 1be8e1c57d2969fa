import { spawn, type ChildProcess } from 'node:child_process';
import { waitForPort } from '../ports.js';

export interface MosquittoProcess {
  /** What Mosquitto wrote to stderr so far. */
  log(): string;
  /** SIGHUP: Mosquitto rereads its password file and ACL. */
  reload(): void;
  stop(): Promise<void>;
}

/**
 * Runs `/usr/sbin/mosquitto -c conf` and resolves once it listens on `port` (the port the
 * config names); rejects with its stderr if it exits first.
 */
export async function spawnMosquitto(conf: string, port: number): Promise<MosquittoProcess> {
  const child: ChildProcess = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
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
