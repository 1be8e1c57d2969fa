import { readFileSync, statSync } from 'node:fs';
import { createServer, type TLSSocket, type Server as TlsServer, type SecureContextOptions } from 'node:tls';
import { ArteriaError, isValidId } from '@arteria/protocol';
import type { Identity } from '@arteria/ports';

/** The embedded broker's TLS listener: server certificate, the CA devices' certificates chain to, and its CRL. */
export interface BrokerTlsOptions {
  host: string;
  port: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Certificate revocation list (PEM); reread when the file changes. */
  crlFile?: string;
  /** Refuse devices without a client certificate (no token logins on this listener). */
  requireCertificate: boolean;
}

/** What the TLS handshake proved about a connection's client. */
export type PeerCertificate =
  | { kind: 'none' }
  | { kind: 'device'; identity: Identity & { kind: 'device' } }
  | { kind: 'refused'; revoked: boolean; reason: string; subject: string };

/** The device a certificate names: CN `{tenant}/{device}`. */
export function deviceFromCommonName(cn: string | undefined): (Identity & { kind: 'device' }) | undefined {
  const [tenant = '', device = '', ...rest] = (cn ?? '').split('/');
  return rest.length === 0 && isValidId(tenant) && isValidId(device) ? { kind: 'device', tenant, device } : undefined;
}

/** The handshake's verdict on the client certificate (the handshake itself never fails on it, so refusals can be logged with the identity). */
export function peerCertificate(socket: TLSSocket): PeerCertificate {
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return { kind: 'none' };
  const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'unverified');
    return { kind: 'refused', revoked: code === 'CERT_REVOKED', reason: `client certificate refused: ${code}`, subject: cn ?? '' };
  }
  const identity = deviceFromCommonName(cn);
  return identity === undefined ? { kind: 'refused', revoked: false, reason: `client certificate names no device (CN ${JSON.stringify(cn ?? '')})`, subject: cn ?? '' } : { kind: 'device', identity };
}

function secureContext(options: BrokerTlsOptions): SecureContextOptions {
  const read = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ArteriaError('CONFIG_INVALID', `TLS file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  return { ca: read(options.caFile), cert: read(options.certFile), key: read(options.keyFile), ...(options.crlFile !== undefined && { crl: read(options.crlFile) }) };
}

/**
 * A TLS server that asks for a client certificate and verifies it against the CA and the
 * CRL, but completes the handshake either way: the broker refuses at CONNECT and logs who
 * it was. A changed CRL file is picked up for the next handshake (a stat per new connection).
 */
export function createBrokerTlsServer(options: BrokerTlsOptions, onSecure: (socket: TLSSocket) => void): TlsServer {
  const server = createServer({ ...secureContext(options), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, onSecure);
  if (options.crlFile !== undefined) {
    const crlFile = options.crlFile;
    // Arteria's PKI replaces the file (rename), so its inode changes with each revocation.
    const version = (): string => {
      const info = statSync(crlFile);
      return `${info.ino}:${info.mtimeMs}:${info.size}`;
    };
    let seen = version();
    // Before tls.Server's own listener builds the connection's TLS socket from the context.
    server.prependListener('connection', () => {
      try {
        const now = version();
        if (now !== seen) {
          seen = now;
          server.setSecureContext({ ...secureContext(options) });
        }
      } catch (err) {
        server.emit('tlsClientError', err);
      }
    });
  }
  return server;
}
