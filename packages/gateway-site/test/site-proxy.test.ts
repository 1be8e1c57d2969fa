import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { EmbeddedObjectStore } from '@arteria/engine-s3';
import { Gateway, createS3Client } from '@arteria/gateway';
import { GatewayServiceConfig, runDoctor } from '@arteria/gateway-site';
import type { S3Client } from '@aws-sdk/client-s3';
import { BUCKET, Responder, memoryLogger, smallRun, type Servers } from '@arteria/testing';
import { gatewayOptions } from './support.js';

/** A site proxy as hospitals run them: HTTP CONNECT only, every tunnel counted by target. */
class ConnectProxy {
  /** `host:port` of each CONNECT, in order. */
  readonly tunnels: string[] = [];
  readonly #sockets = new Set<Socket>();

  private constructor(readonly server: HttpServer, readonly url: string) {}

  static async start(): Promise<ConnectProxy> {
    const server = createHttpServer((_req, res) => {
      res.writeHead(405, { connection: 'close' }).end('this proxy only tunnels (CONNECT)\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new ConnectProxy(server, `http://127.0.0.1:${(server.address() as { port: number }).port}`);
    server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => proxy.#tunnel(req, client, head));
    return proxy;
  }

  #tunnel(req: IncomingMessage, client: Socket, head: Buffer): void {
    const target = req.url ?? '';
    this.tunnels.push(target);
    const [host = '', port = ''] = [target.slice(0, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)];
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    }
    // One side failing ends the tunnel: the other side is closed with it.
    upstream.once('error', () => client.destroy());
    client.once('error', () => upstream.destroy());
  }

  tunnelsTo(port: number): number {
    return this.tunnels.filter((t) => t.endsWith(`:${port}`)).length;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One aedes broker reachable over TCP (the responder playing the platform) and over WebSocket (the gateway). */
async function startWsBroker(): Promise<{ tcpUrl: string; wsUrl: string; wsPort: number; close(): Promise<void> }> {
  const broker = await Aedes.createBroker();
  const tcp: Server = createServer((socket) => broker.handle(socket));
  tcp.listen(0, '127.0.0.1');
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (socket) => broker.handle(createWebSocketStream(socket)));
  http.listen(0, '127.0.0.1');
  await Promise.all([once(tcp, 'listening'), once(http, 'listening')]);
  const wsPort = (http.address() as { port: number }).port;
  return {
    tcpUrl: `mqtt://127.0.0.1:${(tcp.address() as { port: number }).port}`,
    wsUrl: `ws://127.0.0.1:${wsPort}/mqtt`,
    wsPort,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}

describe('gateway behind a site HTTP proxy', () => {
  let directory: string;
  let broker: Awaited<ReturnType<typeof startWsBroker>>;
  let store: EmbeddedObjectStore;
  let s3: S3Client;
  let responder: Responder;
  let proxy: ConnectProxy;
  let servers: Servers;
  let storePort: number;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'arteria-proxy-'));
    broker = await startWsBroker();
    store = new EmbeddedObjectStore();
    await store.start({ host: '127.0.0.1', port: 0, directory: join(directory, 's3'), buckets: [BUCKET] });
    storePort = Number(new URL(store.endpoint).port);
    s3 = createS3Client({ endpoint: store.endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    responder = await Responder.start({ mqttUrl: broker.tcpUrl, s3 });
    proxy = await ConnectProxy.start();
    servers = { mqttUrl: broker.wsUrl, s3Endpoint: store.endpoint, s3, directory, storeDir: join(directory, 's3'), close: () => Promise.resolve() };
  }, 60_000);

  afterAll(async () => {
    await responder?.close();
    await proxy?.close();
    s3?.destroy();
    await broker?.close();
    await store?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('uploads to the object store and speaks MQTT over WebSocket through the configured proxy', async () => {
    const logger = memoryLogger();
    await using gateway = new Gateway(gatewayOptions(servers, 'proxied-1', { proxy: { url: proxy.url, fromEnvironment: false } }), { logger, env: {} });
    await gateway.start();
    expect(gateway.stats().connected).toBe(true);
    const result = await gateway.send({ bytes: smallRun(601), name: 'run.dcm' });
    expect(result.status).toBe('ok');
    expect(responder.requestsOf('proxied-1')[0]?.objectComplete).toBe(true);
    expect(proxy.tunnelsTo(broker.wsPort)).toBeGreaterThanOrEqual(1);
    expect(proxy.tunnelsTo(storePort)).toBeGreaterThanOrEqual(1);
    expect(logger.lines.map((l) => l.message)).toEqual(expect.arrayContaining([`object store through proxy ${proxy.url}`, `broker through proxy ${proxy.url}`]));
  });

  it('takes the proxy from HTTP_PROXY, and goes direct to what NO_PROXY names', async () => {
    const before = proxy.tunnels.length;
    await using viaEnv = new Gateway(gatewayOptions(servers, 'proxied-2'), { logger: memoryLogger(), env: { HTTP_PROXY: proxy.url, NO_PROXY: `127.0.0.1:${storePort}` } });
    await viaEnv.start();
    expect((await viaEnv.send({ bytes: smallRun(602), name: 'run.dcm' })).status).toBe('ok');
    // The broker through the proxy, the object store (exempt) directly.
    expect(proxy.tunnels.slice(before).filter((t) => t.endsWith(`:${broker.wsPort}`)).length).toBeGreaterThanOrEqual(1);
    expect(proxy.tunnels.slice(before).filter((t) => t.endsWith(`:${storePort}`))).toEqual([]);
    await viaEnv.close();

    const afterEnv = proxy.tunnels.length;
    await using direct = new Gateway(gatewayOptions(servers, 'proxied-3'), { logger: memoryLogger(), env: { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' } });
    await direct.start();
    expect((await direct.send({ bytes: smallRun(603), name: 'run.dcm' })).status).toBe('ok');
    expect(proxy.tunnels.length).toBe(afterEnv);
    await direct.close();

    // A CIDR range exempts the addresses in it: the broker and store at 127.0.0.1 go direct.
    await using inRange = new Gateway(gatewayOptions(servers, 'proxied-4'), { logger: memoryLogger(), env: { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.0/8' } });
    await inRange.start();
    expect((await inRange.send({ bytes: smallRun(604), name: 'run.dcm' })).status).toBe('ok');
    expect(proxy.tunnels.length).toBe(afterEnv);
  });

  it('runs the doctor checks of broker, object store and clock through the proxy too', async () => {
    const before = proxy.tunnels.length;
    const service = GatewayServiceConfig.parse({ gateway: gatewayOptions(servers, 'proxied-4', { proxy: { url: proxy.url, fromEnvironment: false } }) });
    const results = await runDoctor(service, { timeoutMs: 5_000, minFreeBytes: 0, maxClockSkewMs: 60_000, certificateWarnDays: 0 });
    const state = (check: string): string | undefined => results.find((r) => r.check === check)?.state;
    expect({ broker: state('broker'), store: state('object store'), clock: state('clock') }).toEqual({ broker: 'ok', store: 'ok', clock: 'ok' });
    const tunnels = proxy.tunnels.slice(before);
    expect(tunnels.filter((t) => t.endsWith(`:${broker.wsPort}`)).length).toBeGreaterThanOrEqual(1);
    expect(tunnels.filter((t) => t.endsWith(`:${storePort}`)).length).toBeGreaterThanOrEqual(2);
  });
});
