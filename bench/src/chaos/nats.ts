import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from './net.js';
import { ServerProcess } from './server-process.js';

/** A private nats-server with JetStream (file store in `dir`) on a free loopback port. */
export async function startNats(dir: string): Promise<ServerProcess & { url: string }> {
  const port = await freePort();
  const folder = path.join(dir, 'nats');
  await mkdir(folder, { recursive: true });
  const conf = path.join(folder, 'nats.conf');
  await writeFile(conf, [`listen: 127.0.0.1:${port}`, `server_name: arteria_chaos_${port}`, 'jetstream {', `  store_dir: "${path.join(folder, 'store')}"`, '}', ''].join('\n'));
  const server = Object.assign(new ServerProcess('nats-server', '/usr/sbin/nats-server', ['-c', conf], port), { url: `nats://127.0.0.1:${port}` });
  await server.start();
  return server;
}
