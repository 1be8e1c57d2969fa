import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const NATS_SERVER = process.env.ARTERIA_NATS_SERVER ?? '/usr/sbin/nats-server';

/**
 * A private nats-server with JetStream and an MQTT listener, each on a free loopback
 * port, its store in a temp folder. `extraConfig` lines go at the top level (accounts,
 * authorization). Never the machine's own server.
 */
export class TestNatsMqttServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    readonly natsPort: number,
    readonly mqttPort: number,
  ) {}

  get natsUrl(): string {
    return `nats://127.0.0.1:${this.natsPort}`;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  static async start(extraConfig: string[] = []): Promise<TestNatsMqttServer> {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-nats-mqtt-'));
    const [natsPort, mqttPort] = [await freePort(), await freePort()];
    const configPath = path.join(dir, 'nats.conf');
    await writeFile(
      configPath,
      [
        `listen: 127.0.0.1:${natsPort}`,
        // 2.9 refuses an MQTT listener without a server name.
        `server_name: arteria_mqtt_test_${natsPort}`,
        `jetstream { store_dir: "${path.join(dir, 'store')}", max_memory_store: 64MB, max_file_store: 1GB }`,
        `mqtt { listen: 127.0.0.1:${mqttPort} }`,
        ...extraConfig,
        '',
      ].join('\n'),
    );
    const child = spawn(NATS_SERVER, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
    });
    const server = new TestNatsMqttServer(child, dir, natsPort, mqttPort);
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${stderr}`);
      if ((await accepts(natsPort)) && (await accepts(mqttPort))) return server;
      await sleep(25);
    }
    await server.stop();
    throw new Error(`nats-server did not listen on ${natsPort}/${mqttPort}: ${stderr}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
