import { createServer, connect, type Server, type Socket } from 'node:net';

export interface StoreProxy {
  endpoint: string;
  /** Part numbers of every UploadPart request that passed, in the order they began. */
  readonly partRequests: number[];
  /** PutObject requests that passed (single-request uploads). */
  readonly putRequests: number;
  /** Connections open through the proxy right now. */
  openConnections(): number;
  /** Resolves once no connection is open (a killed client's requests have reached their end at the store). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const PUT_REQUEST = /PUT (\/[^ ]*) HTTP\/1\.1\r\n/g;

/**
 * A TCP proxy between a gateway and its object store that paces the bytes towards the
 * store (one shared token bucket, `bytesPerSecond`) and counts the S3 requests it
 * carries by their request lines. When the client side dies the store side is cut too,
 * so a part in flight at a kill never completes.
 */
export async function startStoreProxy(targetPort: number, bytesPerSecond: number): Promise<StoreProxy> {
  const partRequests: number[] = [];
  let putRequests = 0;
  const sockets = new Set<Socket>();
  const idleWaiters = new Set<() => void>();
  let nextFreeAt = performance.now();
  const settle = (): void => {
    if (sockets.size > 0) return;
    for (const resolve of idleWaiters) resolve();
    idleWaiters.clear();
  };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    let tail = '';
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      upstream.destroy();
      sockets.delete(client);
      settle();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', cut);
    upstream.on('error', cut);
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      // Request lines can straddle chunks: scan the new bytes with a short tail of the old.
      const text = tail + chunk.toString('latin1');
      for (const match of text.matchAll(PUT_REQUEST)) {
        if (match.index + match[0].length <= tail.length) continue; // counted with the previous chunk
        const part = /[?&]partNumber=(\d+)/.exec(match[1] ?? '');
        if (part) partRequests.push(Number(part[1]));
        else putRequests += 1;
      }
      tail = text.slice(-200);
      const now = performance.now();
      const start = Math.max(now, nextFreeAt);
      nextFreeAt = start + (chunk.length / bytesPerSecond) * 1000;
      const delay = start - now;
      if (delay < 1) {
        upstream.write(chunk);
        return;
      }
      client.pause();
      setTimeout(() => {
        if (upstream.destroyed) return;
        upstream.write(chunk);
        client.resume();
      }, delay);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    partRequests,
    get putRequests() {
      return putRequests;
    },
    openConnections: () => sockets.size,
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.add(resolve);
        settle();
      }),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
