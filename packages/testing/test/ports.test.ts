import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { addressInUse, freePort, retryOnAddressInUse } from '../src/ports.js';

describe('retryOnAddressInUse', () => {
  it('starts again, on a port picked anew, while the picked port is taken', async () => {
    const taken = await freePort();
    const squatter = createServer().listen(taken, '127.0.0.1');
    try {
      const picks = [taken];
      const server = await retryOnAddressInUse(async () => {
        const port = picks.shift() ?? (await freePort());
        const s = createServer();
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.listen(port, '127.0.0.1', resolve);
        });
        return s;
      });
      expect((server.address() as { port: number }).port).not.toBe(taken);
      server.close();
    } finally {
      squatter.close();
    }
  });

  it('recognises a server that says so on stderr, and throws any other failure at once', async () => {
    expect(addressInUse(new Error('mosquitto exited: 1796499251: Error: Address already in use'))).toBe(true);
    let calls = 0;
    await expect(
      retryOnAddressInUse(() => {
        calls++;
        return Promise.reject(new Error('config invalid'));
      }),
    ).rejects.toThrow('config invalid');
    expect(calls).toBe(1);
  });

  it('gives up after its tries, with the last failure', async () => {
    let calls = 0;
    await expect(
      retryOnAddressInUse(() => {
        calls++;
        return Promise.reject(Object.assign(new Error(`listen EADDRINUSE ${calls}`), { code: 'EADDRINUSE' }));
      }, 3),
    ).rejects.toThrow('EADDRINUSE 3');
    expect(calls).toBe(3);
  });
});
