import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OpsHttpServer } from '@arteria/operations';

const ROUTES = { metrics: new Registry(), status: () => Promise.resolve({}), ready: () => true };
const SECURITY = { token: 'ops-lifecycle-token-0123456789' };

describe('ops HTTP server lifecycle', () => {
  it('starts once, closes once (concurrent closes share one outcome), refuses a second start with ILLEGAL_STATE, and closes with await using', async () => {
    const server = new OpsHttpServer();
    expect(server.state).toBe('new');
    await server.start(ROUTES, '127.0.0.1', 0, SECURITY);
    expect(server.state).toBe('running');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await expect(server.start(ROUTES, '127.0.0.1', 0, SECURITY)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    const closing = server.close();
    expect(server.close()).toBe(closing);
    await closing;
    expect(server.state).toBe('closed');
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    let scoped: OpsHttpServer | undefined;
    {
      await using s = new OpsHttpServer();
      await s.start(ROUTES, '127.0.0.1', 0, SECURITY);
      scoped = s;
    }
    expect(scoped.state).toBe('closed');
  });

  it('a start that fails (the port is taken) leaves it closed', async () => {
    await using first = new OpsHttpServer();
    await first.start(ROUTES, '127.0.0.1', 0, SECURITY);
    const second = new OpsHttpServer();
    await expect(second.start(ROUTES, '127.0.0.1', Number(new URL(first.url).port), SECURITY)).rejects.toMatchObject({ code: 'PORT_IN_USE' });
    expect(second.state).toBe('closed');
  });
});
