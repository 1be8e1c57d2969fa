import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { CSRF_HEADER, OpsHttpServer, loadOrCreateOpsToken } from '@arteria/operations';
import { type SecurityEvent } from '@arteria/ports';
import { tempDir } from '@arteria/testing';

const TOKEN = 'ops-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

/** The operations surface as an unauthenticated client on the network would try it. */
describe('ops HTTP surface: credentials, read-only, TLS', () => {
  const server = new OpsHttpServer();
  const refused: SecurityEvent[] = [];
  const replayed: string[] = [];
  const routes = {
    metrics: new Registry(),
    status: () => Promise.resolve({ secret: 'status' }),
    ready: () => true,
    dashboard: {
      devices: () => [],
      recent: () => Promise.resolve([]),
      latency: () => Promise.resolve([]),
      deadLetters: {
        list: () => Promise.resolve([]),
        show: () => Promise.reject(new ArteriaError('DEAD_LETTER_NOT_FOUND', 'none')),
        replay: (taskId: string) => {
          replayed.push(taskId);
          return Promise.resolve({ taskId, requestId: 'r0', status: 'already-completed' as const, result: 'ok' as const });
        },
      },
    },
  };

  beforeAll(async () => {
    await server.start(routes, '127.0.0.1', 0, { token: TOKEN, onRefused: (e) => refused.push(e) });
  });
  afterAll(() => server.close());

  it('probes stay open; dashboard, /api/* and /metrics need the token', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    for (const p of ['/metrics', '/api/status', '/api/results', '/api/devices', '/dashboard.js', '/api/session']) {
      const res = await fetch(`${server.url}${p}`);
      expect(res.status, p).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      expect(await res.text()).not.toContain('secret');
    }
    // A browser without a session is sent to the login page, which is open.
    const first = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toBe('/login');
    expect((await fetch(`${server.url}/login`)).status).toBe(200);
    for (const p of ['/metrics', '/api/status', '/']) expect((await fetch(`${server.url}${p}`, { headers: auth })).status, p).toBe(200);
  });

  it('a wrong token or a forged session is refused and logged with the source address', async () => {
    refused.length = 0;
    expect((await fetch(`${server.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { cookie: `arteria_session=${Date.now() + 3_600_000}.forged` } })).status).toBe(401);
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatchObject({ event: 'login_refused', authenticated: false, reason: 'GET /api/status: wrong token' });
    expect(refused[0]?.address).toMatch(/^(::ffff:)?127\.0\.0\.1:\d+$/);
    expect(refused[1]?.reason).toBe('GET /metrics: expired or invalid session');
  });

  it('the token buys a session cookie (HttpOnly, SameSite=Strict) that opens the dashboard', async () => {
    const session = await fetch(`${server.url}/api/session`, { headers: auth });
    expect(session.status).toBe(204);
    const cookie = session.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^arteria_session=\d+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict/);
    const value = cookie.split(';')[0] ?? '';
    expect((await fetch(`${server.url}/api/results`, { headers: { cookie: value } })).status).toBe(200);
    // The same cookie with another expiry is not valid: the expiry is under the MAC.
    const [name, rest] = value.split('=');
    const tampered = `${name}=${Number(rest?.split('.')[0]) + 1000}.${rest?.split('.')[1] ?? ''}`;
    expect((await fetch(`${server.url}/api/results`, { headers: { cookie: tampered } })).status).toBe(401);
  });

  it('the one state change, a dead letter replay (POST): bearer, or session cookie with its CSRF token from the same origin', async () => {
    const url = `${server.url}/api/dead-letters/t-1/replay`;
    refused.length = 0;
    replayed.length = 0;
    expect((await fetch(url, { method: 'POST' })).status).toBe(401);
    // A script with the token (no browser sends a bearer header on its own): no CSRF token needed.
    const byBearer = await fetch(url, { method: 'POST', headers: auth });
    expect(byBearer.status).toBe(200);
    expect(await byBearer.json()).toMatchObject({ taskId: 't-1', status: 'already-completed' });
    expect(replayed).toEqual(['t-1']);

    const cookie = (await fetch(`${server.url}/api/session`, { headers: auth })).headers.get('set-cookie')?.split(';')[0] ?? '';
    // What a forged cross-site form or fetch can send: the cookie (were SameSite not there), no token.
    expect((await fetch(url, { method: 'POST', headers: { cookie } })).status).toBe(403);
    expect((await fetch(url, { method: 'POST', headers: { cookie, [CSRF_HEADER]: 'guessed' } })).status).toBe(403);
    const csrf = (await (await fetch(`${server.url}/api/csrf`, { headers: { cookie } })).json()) as { header: string; token: string };
    expect(csrf.header).toBe(CSRF_HEADER);
    // The right token from another origin is still refused.
    expect((await fetch(url, { method: 'POST', headers: { cookie, [CSRF_HEADER]: csrf.token, origin: 'https://evil.example' } })).status).toBe(403);
    expect(replayed).toEqual(['t-1']);
    expect(refused.map((e) => e.reason)).toEqual([
      'POST /api/dead-letters/t-1/replay: missing credential',
      'POST /api/dead-letters/t-1/replay: missing or wrong CSRF token',
      'POST /api/dead-letters/t-1/replay: missing or wrong CSRF token',
      'POST /api/dead-letters/t-1/replay: cross-origin request',
    ]);
    // The page's own request: cookie, token, same origin.
    const ok = await fetch(url, { method: 'POST', headers: { cookie, [CSRF_HEADER]: csrf.token, origin: server.url } });
    expect(ok.status).toBe(200);
    expect(replayed).toEqual(['t-1', 't-1']);
    // Another session's token does not fit this one.
    const other = (await fetch(`${server.url}/api/session`, { headers: auth })).headers.get('set-cookie')?.split(';')[0] ?? '';
    if (other !== cookie) expect((await fetch(url, { method: 'POST', headers: { cookie: other, [CSRF_HEADER]: csrf.token } })).status).toBe(403);
    // Only POST, and only there.
    expect((await fetch(url, { method: 'DELETE', headers: auth })).status).toBe(405);
    expect((await fetch(`${server.url}/api/dead-letters/t-1`, { method: 'POST', headers: auth })).status).toBe(405);
  });

  it('refuses every method but GET and HEAD with 405, with or without a credential (but the replay POST)', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const p of ['/api/status', '/metrics', '/healthz', '/']) {
        const res = await fetch(`${server.url}${p}`, { method, headers: auth });
        expect(res.status, `${method} ${p}`).toBe(405);
        expect(res.headers.get('allow')).toBe('GET, HEAD');
      }
    }
  });

  it('serves HTTPS when given a certificate, with the same rules', async () => {
    const tmp = await tempDir('ops-tls');
    const tls = new OpsHttpServer();
    try {
      const cert = path.join(tmp.dir, 'cert.pem');
      const key = path.join(tmp.dir, 'key.pem');
      await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
      await tls.start(routes, '127.0.0.1', 0, { token: TOKEN, tls: { certFile: cert, keyFile: key }, onRefused: () => undefined });
      expect(tls.url).toMatch(/^https:/);
      const get = (p: string, headers: Record<string, string> = {}): Promise<number> =>
        new Promise((resolve, reject) => {
          const req = request(`${tls.url}${p}`, { rejectUnauthorized: false, headers }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      expect(await get('/healthz')).toBe(200);
      expect(await get('/metrics')).toBe(401);
      expect(await get('/metrics', auth)).toBe(200);
    } finally {
      await tls.close();
      await tmp.remove();
    }
  });

  it('a cluster process without a configured token makes one in its data folder, 0600', async () => {
    const tmp = await tempDir('ops-token');
    try {
      const token = await loadOrCreateOpsToken(tmp.dir);
      expect(token.length).toBeGreaterThanOrEqual(24);
      expect(await loadOrCreateOpsToken(tmp.dir)).toBe(token);
      expect(statSync(path.join(tmp.dir, 'ops-token')).mode & 0o777).toBe(0o600);
    } finally {
      await tmp.remove();
    }
  });
});
