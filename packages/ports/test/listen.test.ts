import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { closeServer, listen, urlHost } from '../src/index.js';

describe('listen and urlHost', () => {
  it('names the configured host in URLs: loopback for a wildcard address, IPv6 in brackets', () => {
    expect(urlHost('0.0.0.0')).toBe('127.0.0.1');
    expect(urlHost('::')).toBe('127.0.0.1');
    expect(urlHost('')).toBe('127.0.0.1');
    expect(urlHost('127.0.0.1')).toBe('127.0.0.1');
    expect(urlHost('10.1.2.3')).toBe('10.1.2.3');
    expect(urlHost('::1')).toBe('[::1]');
    expect(urlHost('gateway.local')).toBe('gateway.local');
  });

  it('refuses a taken port with PORT_IN_USE naming the flag, and an address the machine lacks with CONFIG_INVALID', async () => {
    const first = createServer();
    const port = await listen(first, 0, '127.0.0.1', '--port');
    try {
      await expect(listen(createServer(), port, '127.0.0.1', '--port')).rejects.toMatchObject({ code: 'PORT_IN_USE', message: expect.stringContaining('--port') as string });
      // TEST-NET-1 (RFC 5737): never assigned to this machine.
      await expect(listen(createServer(), 0, '192.0.2.1', '--port')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    } finally {
      await closeServer(first);
    }
  });
});
