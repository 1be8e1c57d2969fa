import { connect, createServer } from 'node:net';

/**
 * Ports handed to other processes come from below the kernel's ephemeral range
 * (32768-60999 on Linux). A port the OS picked with `listen(0)` lies inside that range,
 * so any outgoing connection made meanwhile (a test's client, a server's own dial-out)
 * may take it before the process it was meant for binds it.
 */
const LOW = 20_000;
const HIGH = 32_000;

/** Whether nothing listens on the port on 127.0.0.1 (checked by binding it). */
export function isFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A free loopback port outside the ephemeral range. */
export async function freePort(): Promise<number> {
  return freePorts(1);
}

/** The first of `count` consecutive free ports (a role that listens on base + i). */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - LOW - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await isFree(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports between ${LOW} and ${HIGH}`);
}

/** Whether something accepts TCP connections on the port. */
export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves once something accepts connections on the port; throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await accepts(port, host))) {
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a server failed because its port was taken (its message, or a Node error code). */
export const addressInUse = (err: unknown): boolean =>
  (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE' || /address already in use/i.test(err instanceof Error ? err.message : String(err));

/**
 * Runs `start` again, up to `tries` times, while it fails because its port was taken: a free
 * port is only free until the server meant for it binds, and tests running in parallel
 * pick ports from the same range. `start` picks its ports anew on each try.
 */
export async function retryOnAddressInUse<T>(start: () => Promise<T>, tries = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= tries || !addressInUse(err)) throw err;
    }
  }
}
