import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { accepts, freePort } from '../ports.js';

/** Debian's nats-server (apt). Override with ARTERIA_NATS_SERVER. */
const NATS_SERVER = process.env.ARTERIA_NATS_SERVER ?? '/usr/sbin/nats-server';

/**
 * Whether this nats-server knows `sync_interval` (2.10 and later). 2.9 has no such
 * setting: it writes each message to the OS before acknowledging it (a killed process
 * loses nothing) and fsyncs every 2 minutes.
 */
function supportsSyncInterval(): boolean {
  const version = /v(\d+)\.(\d+)/.exec(execFileSync(NATS_SERVER, ['--version'], { encoding: 'utf8' }));
  const [major, minor] = [Number(version?.[1] ?? 0), Number(version?.[2] ?? 0)];
  return major > 2 || (major === 2 && minor >= 10);
}

/**
 * A private nats-server with JetStream on a free loopback port, its store in a temp
 * folder, fsync on every write (`sync_interval: always`) where the server supports it.
 * Never the machine's own server.
 * `kill()` + `start()` restarts it on the same port and store, as after a crash.
 */
export class TestNatsServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly configPath: string,
    /** True when the config has `sync_interval: always`. */
    readonly syncAlways: boolean,
    /** Port of the MQTT listener, when started with `{ mqtt: true }`. */
    readonly mqttPort: number | undefined,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get natsUrl(): string {
    return this.url;
  }

  /** The MQTT listener's URL (started with `{ mqtt: true }`). */
  get mqttUrl(): string {
    if (this.mqttPort === undefined) throw new Error('this nats-server has no MQTT listener');
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  /**
   * `extraConfig`: more lines for the server's config (an `authorization {}` block, say).
   * `mqtt`: also an MQTT listener on a free port (2.9 needs `server_name` for it, set anyway).
   */
  static async start(extraConfig: string[] = [], options: { mqtt?: boolean } = {}): Promise<TestNatsServer> {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-nats-'));
    const port = await freePort();
    const mqttPort = options.mqtt ? await freePort() : undefined;
    const configPath = path.join(dir, 'nats.conf');
    const storeDir = path.join(dir, 'store');
    const syncAlways = supportsSyncInterval();
    await writeFile(
      configPath,
      [
        `listen: 127.0.0.1:${port}`,
        `server_name: arteria_test_${port}`,
        'jetstream {',
        `  store_dir: "${storeDir}"`,
        ...(syncAlways ? ['  sync_interval: always'] : []),
        '  max_memory_store: 64MB',
        '  max_file_store: 1GB',
        '}',
        ...(mqttPort === undefined ? [] : [`mqtt { listen: 127.0.0.1:${mqttPort} }`]),
        ...extraConfig,
        '',
      ].join('\n'),
    );
    const server = new TestNatsServer(port, dir, configPath, syncAlways, mqttPort);
    await server.start();
    return server;
  }

  /** Starts the process (again) and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.child) throw new Error('nats-server already running');
    const child = spawn(NATS_SERVER, ['-c', this.configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
    });
    this.child = child;
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${stderr}`);
      if ((await accepts(this.port)) && (this.mqttPort === undefined || (await accepts(this.mqttPort)))) return;
      await sleep(25);
    }
    throw new Error(`nats-server did not listen on ${this.port}: ${stderr}`);
  }

  /** Ends the process with `signal` (SIGKILL: a crash) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    await rm(this.dir, { recursive: true, force: true });
  }
}

