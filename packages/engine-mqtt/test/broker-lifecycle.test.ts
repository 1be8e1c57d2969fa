import { describe, expect, it } from 'vitest';
import { EmbeddedBroker, type BrokerOptions } from '@arteria/engine-mqtt';

const options = (port = 0): BrokerOptions => ({ host: '127.0.0.1', port, secrets: { tenants: new Map([['demo', 'demo-tenant-secret-0123456789']]), platform: 'platform-secret-0123456789' }, hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined } });

describe('embedded broker lifecycle', () => {
  it('starts once, closes once (concurrent closes share one outcome), refuses a second start with ILLEGAL_STATE, and closes with await using', async () => {
    const broker = new EmbeddedBroker();
    expect(broker.state).toBe('new');
    await broker.start(options());
    expect(broker.state).toBe('running');
    await expect(broker.start(options())).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    const closing = broker.close();
    expect(broker.close()).toBe(closing);
    await closing;
    expect(broker.state).toBe('closed');
    await expect(broker.publisher().publish({ v: 1, requestId: 'r1', tenant: 'demo', device: 'deva', status: 'ok', timings: {} })).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    let scoped: EmbeddedBroker | undefined;
    {
      await using b = new EmbeddedBroker();
      await b.start(options());
      scoped = b;
    }
    expect(scoped.state).toBe('closed');
  });

  it('a start that fails (the port is taken) closes what it opened and leaves it closed', async () => {
    await using first = new EmbeddedBroker();
    await first.start(options());
    const second = new EmbeddedBroker();
    await expect(second.start(options(Number(new URL(first.url).port)))).rejects.toMatchObject({ code: 'PORT_IN_USE' });
    expect(second.state).toBe('closed');
  });
});
