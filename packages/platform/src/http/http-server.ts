import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { closeServer, listen } from '../embedded/listen.js';
import { serveDashboard, type DashboardData } from './dashboard-api.js';

export interface HttpRoutes {
  metrics: Registry;
  /** JSON snapshot for dashboards and `arteria status`. */
  status(): Promise<unknown>;
  ready(): boolean;
  /** Serves the dashboard page at / and its JSON endpoints when given. */
  dashboard?: DashboardData;
}

/** Operations endpoints: /metrics (Prometheus), /healthz, /readyz, /api/status, and the dashboard where configured. */
export class OpsHttpServer {
  #server: Server | undefined;
  #port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(routes: HttpRoutes, host: string, port: number): Promise<void> {
    const server = createServer((req, res) => {
      handle(routes, req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(err as Error).message}\n`);
      });
    });
    this.#port = await listen(server, port, host, '--http-port');
    this.#server = server;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await closeServer(server);
  }
}

async function handle(routes: HttpRoutes, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  if (routes.dashboard && (await serveDashboard(routes.dashboard, path, url.searchParams, res))) return;
  switch (path) {
    case '/metrics': {
      const body = await routes.metrics.metrics();
      res.writeHead(200, { 'content-type': routes.metrics.contentType });
      res.end(body);
      return;
    }
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
