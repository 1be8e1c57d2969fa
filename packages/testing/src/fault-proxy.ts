import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between clients and one upstream server that breaks the network on
 * command: `cut()` drops every connection and refuses new ones (a cable pulled),
 * `restore()` lets them through again, `flap()` alternates the two, `freeze()` leaves the
 * open connections open but silent (a half-dead path: no error, nothing arrives).
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #cut = false;
  #flapping: NodeJS.Timeout | undefined;

  private constructor(server: Server, private readonly upstreamPort: number) {
    this.#server = server;
  }

  static async start(upstreamPort: number): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, upstreamPort);
    server.on('connection', (socket) => proxy.#accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  #accept(client: Socket): void {
    if (this.#cut) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = connect({ port: this.upstreamPort, host: '127.0.0.1' });
    upstream.setNoDelay(true);
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const end = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.#cut = true;
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
  }

  /** Open connections stop carrying bytes, both ways, without closing; new ones work. */
  freeze(): void {
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  restore(): void {
    this.#cut = false;
  }

  /** Cuts and restores every `periodMs / 2` until `stopFlapping()` (which restores). */
  flap(periodMs: number): void {
    this.stopFlapping();
    this.#flapping = setInterval(() => (this.#cut ? this.restore() : this.cut()), periodMs / 2);
  }

  stopFlapping(): void {
    clearInterval(this.#flapping);
    this.#flapping = undefined;
    this.restore();
  }

  async close(): Promise<void> {
    this.stopFlapping();
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
