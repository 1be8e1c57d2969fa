// The platform and the gateway of a benchmark row, each in a process of its own, as on
// two machines: each process's peak RSS is then its own figure. The platform may run
// inside a network namespace (bench/link/shape.sh), reached over the shaped link, as may
// the link benchmark's byte-counting TCP sink (tcp-sink.ts).
// BENCH_PROFILE_DIR: both write V8 CPU profiles there (each thread its own file) when they stop.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayAnswer, GatewayAsk, GatewayChildOptions } from './gateway-child.js';

const profileArgs = (): string[] => (process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []);

export interface PlatformProcess {
  child: ChildProcess;
  mqttUrl: string;
  s3Endpoint: string;
  storeCredentials: { accessKeyId: string; secretAccessKey: string; region: string };
  peakRssMb(): Promise<number>;
  stop(): Promise<void>;
}

/** The embedded platform with `options` in its own process; `netns`: inside that network namespace. */
export async function startPlatformProcess(options: Record<string, unknown>, netns?: string): Promise<PlatformProcess> {
  const module = fileURLToPath(new URL('./platform-child.js', import.meta.url));
  // In a namespace: `ip netns exec NAME node platform-child.js` keeps the IPC channel (an inherited descriptor).
  const spawnOptions = netns === undefined ? { execArgv: [...process.execArgv, ...profileArgs()] } : { execPath: '/usr/sbin/ip', execArgv: ['netns', 'exec', netns, process.execPath, ...profileArgs()] };
  const child = fork(module, [JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], ...spawnOptions });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const endpoints = JSON.parse(line.toString()) as Pick<PlatformProcess, 'mqttUrl' | 's3Endpoint' | 'storeCredentials'>;
  return {
    child,
    ...endpoints,
    peakRssMb: async () => {
      child.send('peak-rss');
      const [answer] = (await once(child, 'message')) as [{ peakRssMb: number }];
      return answer.peakRssMb;
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export interface TcpSink {
  port: number;
  stop(): Promise<void>;
}

/** The byte-counting TCP sink (tcp-sink.ts) listening at `host` inside network namespace `netns`. */
export async function startTcpSink(host: string, netns: string): Promise<TcpSink> {
  const module = fileURLToPath(new URL('./tcp-sink.js', import.meta.url));
  // `ip netns exec` execs node in place, so the child's pid is the sink's own.
  const child = spawn('/usr/sbin/ip', ['netns', 'exec', netns, process.execPath, module, host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  if (!(port > 0)) throw new Error(`tcp sink in ${netns}: no port (${line.toString().trim()})`);
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export interface GatewayProcess {
  readonly pid: number | undefined;
  run(ask: GatewayAsk): Promise<GatewayAnswer>;
  stop(): Promise<void>;
}

export async function startGatewayProcess(options: GatewayChildOptions): Promise<GatewayProcess> {
  const child = fork(fileURLToPath(new URL('./gateway-child.js', import.meta.url)), [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...profileArgs()] });
  await once(child, 'message');
  return {
    pid: child.pid,
    run: async (ask) => {
      child.send(ask);
      const [answer] = (await once(child, 'message')) as [GatewayAnswer];
      return answer;
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** `name@^major` of the repository's algorithm folder (bundled versions move on between runs of a benchmark). */
export function specOf(algorithm: string): string {
  const manifest = JSON.parse(readFileSync(path.join(fileURLToPath(new URL('../../algorithms', import.meta.url)), algorithm, 'manifest.json'), 'utf8')) as { version: string };
  return `${algorithm}@^${manifest.version.split('.')[0] ?? '1'}`;
}
