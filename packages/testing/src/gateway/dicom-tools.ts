import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from '../ports.js';

export const exec = promisify(execFile);

/** DCMTK's echoscu: resolves true when the node answered the C-ECHO. */
export async function echo(port: number, calledAeTitle: string): Promise<boolean> {
  try {
    await exec('echoscu', ['-aet', 'PROBE', '-aec', calledAeTitle, '127.0.0.1', String(port)]);
    return true;
  } catch {
    return false;
  }
}

export interface StoreScp {
  port: number;
  aeTitle: string;
  close(): Promise<void>;
}

/** DCMTK's storescp as the hospital's PACS: writes every received object to `folder`. */
export async function startStoreScp(folder: string, aeTitle = 'PACS'): Promise<StoreScp> {
  const port = await freePort();
  const child: ChildProcess = spawn('storescp', ['-aet', aeTitle, '-od', folder, '+uf', String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await echo(port, aeTitle)); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  return {
    port,
    aeTitle,
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
