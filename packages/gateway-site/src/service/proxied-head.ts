import { request as httpRequest, type Agent } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';

/**
 * A HEAD request to `url` through the site proxy's agent: what `doctor` needs from an
 * endpoint it cannot reach directly (the server's Date header, its TLS certificate).
 * ws:// and wss:// URLs are asked over http:// and https:// (same host and port).
 */
export function headThroughProxy(url: URL, agent: Agent): Promise<{ date: string | null; certificate: PeerCertificate | undefined }> {
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  const request = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port === '' ? (secure ? 443 : 80) : Number(url.port), path: '/', method: 'HEAD', agent, servername: url.hostname }, (res) => {
      const certificate = secure ? (res.socket as TLSSocket).getPeerCertificate() : undefined;
      const date = res.headers.date ?? null;
      res.resume();
      res.once('end', () => resolve({ date, certificate }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}
