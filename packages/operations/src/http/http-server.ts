import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Registry } from 'prom-client';
import { ArteriaError, Lifecycle, type LifecycleState } from '@arteria/protocol';
import { closeServer, listen, securityEventLine, urlHost, type SecurityEventSink } from '@arteria/ports';
import { REPLAY_PATH, serveDashboard, type DashboardData } from './dashboard-api.js';
import { loadChartAssets, type ChartAssets } from './chart-assets.js';
import { LOGIN_HTML, LOGIN_SCRIPT } from './login-page.js';
import { CSRF_HEADER, OpsAuth } from './ops-auth.js';

export interface HttpRoutes {
  metrics: Registry;
  /** JSON snapshot for dashboards and `arteria status`. */
  status(): Promise<unknown>;
  ready(): boolean;
  /** Serves the dashboard page at / and its JSON endpoints when given. */
  dashboard?: DashboardData;
}

/** Who may read the surface, and how it is served. */
export interface HttpSecurity {
  /** The operator token (bearer, or exchanged for a session cookie at /login). */
  token: string;
  /** PEM files: serve HTTPS instead of HTTP. */
  tls?: { certFile: string; keyFile: string };
  /** Every refused request (wrong or missing credential) with its source address; default: a security line on stderr. */
  onRefused?: SecurityEventSink;
}

/** Open to anyone: probes (kubelet, load balancers) and the login page itself. */
/** Browsers ask for /favicon.ico on every page: answered empty, not logged as a refused login. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/login', '/login.js', '/favicon.ico']);

const logRefused: SecurityEventSink = (event) => {
  process.stderr.write(`${securityEventLine(event)}\n`);
};

/**
 * Operations endpoints: /metrics (Prometheus), /healthz, /readyz, /api/status, and the
 * dashboard where configured. Everything but the probes and the login page needs the
 * operator token. Read-only but for one state change, a dead letter's replay (POST, with a
 * CSRF token when the credential is a session cookie); any other method or path gets 405.
 */
export class OpsHttpServer {
  readonly #life = new Lifecycle('the ops HTTP server');
  #host = '127.0.0.1';
  #port = 0;
  #scheme = 'http';

  /** Where this process reaches the server: the configured host (loopback for a wildcard address). */
  get url(): string {
    return `${this.#scheme}://${this.#host}:${this.#port}`;
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** Starts once (ILLEGAL_STATE after). */
  start(routes: HttpRoutes, host: string, port: number, security: HttpSecurity): Promise<void> {
    return this.#life.start(() => this.#start(routes, host, port, security));
  }

  async #start(routes: HttpRoutes, host: string, port: number, security: HttpSecurity): Promise<void> {
    const auth = new OpsAuth(security.token);
    const tls = security.tls === undefined ? undefined : await readTls(security.tls);
    const onRefused = security.onRefused ?? logRefused;
    const charts = routes.dashboard === undefined ? undefined : await loadChartAssets();
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      handle(routes, charts, auth, tls !== undefined, onRefused, req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(err as Error).message}\n`);
      });
    };
    const server = tls === undefined ? createServer(handler) : createTlsServer(tls, handler);
    this.#scheme = tls === undefined ? 'http' : 'https';
    this.#port = await listen(server, port, host, '--http-port');
    this.#life.defer('server', () => closeServer(server));
    this.#host = urlHost(host);
  }

  /** Closes the server and every connection on it; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function readTls(files: { certFile: string; keyFile: string }): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(files.certFile), key: await readFile(files.keyFile) };
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `HTTP TLS files: ${(err as Error).message}`, { cause: err });
  }
}

async function handle(routes: HttpRoutes, charts: ChartAssets | undefined, auth: OpsAuth, secure: boolean, onRefused: SecurityEventSink, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const write = method === 'POST' && routes.dashboard !== undefined && REPLAY_PATH.test(path);
  if (method !== 'GET' && method !== 'HEAD' && !write) {
    res.writeHead(405, { allow: REPLAY_PATH.test(path) ? 'POST' : 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('read-only: GET and HEAD only, but POST /api/dead-letters/{taskId}/replay\n');
    return;
  }
  if (!OPEN_PATHS.has(path)) {
    const verdict = write ? auth.checkWrite(req) : auth.check(req);
    if (!verdict.ok) {
      if (path === '/' && verdict.reason === 'missing credential') {
        res.writeHead(302, { location: '/login' }); // a browser's first visit: not a failed login
        res.end();
        return;
      }
      const address = `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`;
      onRefused({ event: 'login_refused', identity: 'operator (ops HTTP)', authenticated: false, clientId: '', address, reason: `${method} ${path}: ${verdict.reason}` });
      const csrf = verdict.reason === 'missing or wrong CSRF token' || verdict.reason === 'cross-origin request';
      res.writeHead(csrf ? 403 : 401, { ...(csrf ? {} : { 'www-authenticate': 'Bearer realm="arteria"' }), 'content-type': 'text/plain' });
      res.end(csrf ? `refused: ${verdict.reason} (the dashboard sends ${CSRF_HEADER} from GET /api/csrf)\n` : 'credential required: Authorization: Bearer <operator token>, or sign in at /login\n');
      return;
    }
  }
  if (routes.dashboard && charts && (await serveDashboard(routes.dashboard, charts, method, path, url.searchParams, res))) return;
  switch (path) {
    case '/login':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'" });
      res.end(LOGIN_HTML);
      return;
    case '/login.js':
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(LOGIN_SCRIPT);
      return;
    case '/api/session':
      // Reached only with a valid credential: hand the browser its session cookie.
      res.writeHead(204, { 'set-cookie': auth.sessionCookie(secure), 'cache-control': 'no-store' });
      res.end();
      return;
    case '/api/csrf':
      // Reached only with a valid credential; same-origin only (no CORS), so another site cannot read it.
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ header: CSRF_HEADER, token: auth.csrfTokenOf(req) ?? null }));
      return;
    case '/metrics': {
      const body = await routes.metrics.metrics();
      res.writeHead(200, { 'content-type': routes.metrics.contentType });
      res.end(body);
      return;
    }
    case '/favicon.ico':
      res.writeHead(204);
      res.end();
      return;
    case '/healthz':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    case '/readyz': {
      const ready = routes.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'ready\n' : 'not ready\n');
      return;
    }
    case '/api/status':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(await routes.status()));
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
  }
}
