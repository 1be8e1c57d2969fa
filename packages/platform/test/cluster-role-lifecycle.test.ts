import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { RoleLifecycle } from '../src/cluster/role-lifecycle.js';

/** The start/close contract every cluster role shares. */
describe('RoleLifecycle', () => {
  it('runs every cleanup, last opened first, even when one throws; then closed', async () => {
    const life = new RoleLifecycle();
    const ran: string[] = [];
    await life.start(() => {
      life.defer(() => Promise.resolve(void ran.push('stores')));
      life.defer(() => Promise.reject(new Error('publisher')));
      life.defer(() => Promise.resolve(void ran.push('service')));
      return Promise.resolve();
    });
    expect(life.state).toBe('running');
    const closing = life.close(() => Promise.resolve());
    expect(life.state).toBe('draining');
    await expect(closing).rejects.toBeInstanceOf(ArteriaError);
    await expect(closing).rejects.toMatchObject({ code: 'CLOSE_FAILED', message: expect.stringContaining('publisher') as string });
    expect(ran).toEqual(['service', 'stores']);
    expect(life.state).toBe('closed');
    // Idempotent: the same outcome, nothing runs twice.
    await expect(life.close(() => Promise.resolve())).rejects.toMatchObject({ code: 'CLOSE_FAILED' });
    expect(ran).toEqual(['service', 'stores']);
  });

  it('a failed start closes what it opened and rethrows', async () => {
    const life = new RoleLifecycle();
    const ran: string[] = [];
    const failure = new Error('broker down');
    await expect(
      life.start(() => {
        life.defer(() => Promise.resolve(void ran.push('stores')));
        return Promise.reject(failure);
      }),
    ).rejects.toBe(failure);
    expect(ran).toEqual(['stores']);
    expect(life.state).toBe('closed');
    // A closed role cannot be started again.
    await expect(life.start(() => Promise.resolve())).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
  });

  it('close returns what the drain returned; a failing drain still runs every cleanup', async () => {
    const drained = new RoleLifecycle<boolean>();
    await drained.start(() => Promise.resolve());
    expect(await drained.close(() => Promise.resolve(false))).toBe(false);

    const life = new RoleLifecycle<boolean>();
    let cleaned = false;
    await life.start(() => Promise.resolve(life.defer(() => Promise.resolve(void (cleaned = true)))));
    await expect(life.close(() => Promise.reject(new Error('pool')))).rejects.toThrow('pool');
    expect(cleaned).toBe(true);
    expect(life.state).toBe('closed');
  });

  it('readiness follows running and the role\'s own condition', async () => {
    const life = new RoleLifecycle();
    let connected = false;
    const http = { host: '127.0.0.1', port: 0, token: 'lifecycle-test-token-0123', tlsCertFile: '', tlsKeyFile: '', dataDir: '.' };
    await life.start(() => life.serve({ metrics: new Registry(), status: () => Promise.resolve({}) }, http, () => connected));
    try {
      expect((await fetch(`${life.http.url}/readyz`)).status).toBe(503);
      connected = true;
      expect((await fetch(`${life.http.url}/readyz`)).status).toBe(200);
      expect((await fetch(`${life.http.url}/healthz`)).status).toBe(200);
    } finally {
      await life.close(() => Promise.resolve());
    }
  });
});
