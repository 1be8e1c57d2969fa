import type { Server } from 'node:net';
import { ArteriaError } from '@arteria/protocol';

/**
 * Listens on host:port. A taken port becomes PORT_IN_USE naming the flag that moves it,
 * because the machine may already run a broker or store on the usual ports.
 */
export async function listen(server: Server, port: number, host: string, flag: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(new ArteriaError('PORT_IN_USE', `port ${port} on ${host} is already in use by another program; choose another with ${flag} <port>`, { cause: err }));
      } else {
        // An address this machine does not have, a port below 1024 without the right: the configuration's to fix.
        reject(new ArteriaError('CONFIG_INVALID', `cannot listen on ${host}:${port} (${flag}): ${err.message}`, { cause: err }));
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new ArteriaError('INTERNAL', 'server has no TCP address');
  return address.port;
}

/**
 * The host a URL names to reach a server listening on `host`: a wildcard address (all
 * interfaces) is reached on loopback, an IPv6 address goes in brackets.
 */
export function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Closes a server and every open connection on it. */
export async function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  server.closeAllConnections?.();
  await closed;
}
