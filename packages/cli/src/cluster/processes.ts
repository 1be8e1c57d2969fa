import { spawn } from 'node:child_process';
import { access, constants, open, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArteriaError } from '@arteria/protocol';
import { isOurs, type ClusterProcess } from './layout.js';

/** This CLI's entry point, started again for each role. */
export const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

export interface Launch {
  name: string;
  command: string;
  args: string[];
  port: number;
  /** HTTP base URL whose /readyz says ready; without it, the port accepting connections does. */
  url?: string;
  log: string;
}

/**
 * Starts a process detached from this one (its own process group, output to its log file),
 * so that it outlives `arteria cluster up`.
 */
export async function launch(spec: Launch): Promise<ClusterProcess> {
  const log = await open(spec.log, 'a');
  try {
    const child = spawn(spec.command, spec.args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid ?? 0));
      child.once('error', (err) => reject(new ArteriaError('CONFIG_INVALID', `cannot start ${spec.name} (${spec.command}): ${err.message}`, { cause: err })));
    });
    child.unref();
    return { name: spec.name, pid, port: spec.port, ...(spec.url === undefined ? {} : { url: spec.url }), log: spec.log };
  } finally {
    await log.close();
  }
}

/** Resolves once the process is ready; rejects (with its log's tail) when it exits or the time runs out. */
export async function waitReady(p: ClusterProcess, dir: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await ready(p)) return;
    if (!(await isOurs(p.pid, dir))) throw new ArteriaError('CONFIG_INVALID', `${p.name} exited before it was ready; the end of ${p.log}:\n${await tail(p.log)}`);
    if (Date.now() > until) throw new ArteriaError('CONFIG_INVALID', `${p.name} was not ready within ${Math.round(timeoutMs / 1000)} s; the end of ${p.log}:\n${await tail(p.log)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function ready(p: ClusterProcess): Promise<boolean> {
  if (p.url !== undefined) {
    try {
      const res = await fetch(`${p.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }
  return portOpen(p.port);
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(${(err as Error).message})`;
  }
}

/**
 * Stops a process `cluster up` started: SIGTERM to its group (roles drain), SIGKILL after
 * `graceMs`. Resolves true when it was running. A pid that is no longer ours is left alone.
 */
export async function stop(p: ClusterProcess, dir: string, graceMs: number): Promise<boolean> {
  if (!(await isOurs(p.pid, dir))) return false;
  signalGroup(p.pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (await isOurs(p.pid, dir)) {
    if (Date.now() > until) {
      signalGroup(p.pid, 'SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 200));
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

/** An executable by name: on PATH or in the sbin folders Debian installs servers to. */
export async function findExecutable(name: string): Promise<string> {
  if (name.includes('/')) return name;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'].filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new ArteriaError('CONFIG_INVALID', `${name} is not installed (not on PATH, nor in /usr/sbin): install it (Debian: apt-get install ${name}) or pass its path`);
}
