import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EmbeddedBroker, PacketSizeGuard, guardedConnection } from '@arteria/engine-mqtt';
import { type SecurityEvent } from '@arteria/ports';
import { deviceToken } from '@arteria/protocol';

const TENANTS = new Map([['demo', 'demo-tenant-secret-0123456789']]);

/** MQTT remaining length (1 to 4 bytes). */
function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

/**
 * The embedded broker closes a connection whose packet header declares more than it
 * takes, before it reads the body: a 100 MB PUBLISH costs it the header, not 100 MB.
 */
describe('embedded broker: packet size limit', () => {
  const broker = new EmbeddedBroker();
  const events: SecurityEvent[] = [];
  beforeAll(() =>
    broker.start({
      host: '127.0.0.1',
      port: 0,
      secrets: { tenants: TENANTS, platform: 'platform-secret-0123456789' },
      hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined, onSecurityEvent: (event) => events.push(event) },
    }),
  );
  afterAll(() => broker.close());

  it('closes a connection that announces a 100 MB packet after its header, and logs it', async () => {
    const port = Number(new URL(broker.url).port);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let written = 0;
    // A reset is the expected outcome: wait for the close, not for an error.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(Buffer.concat([Buffer.from([0x30]), remainingLength(100 * 1024 * 1024)]));
    // Keep sending junk body until the broker hangs up (bounded: 100 MB never goes out).
    const chunk = Buffer.alloc(16 * 1024, 0x41);
    while (!socket.destroyed && written < 8 * 1024 * 1024) {
      if (!socket.write(chunk)) await Promise.race([new Promise<void>((resolve) => socket.once('drain', () => resolve())), closed]);
      written += chunk.length;
    }
    await closed;
    expect(written).toBeLessThan(8 * 1024 * 1024);
    expect(events).toContainEqual(expect.objectContaining({ event: 'packet_refused', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown }));
  });

  it('takes packets within the limit as before', async () => {
    const device = { tenant: 'demo', device: 'deva' };
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'demo.deva', username: 'demo/deva', password: deviceToken(TENANTS.get('demo') ?? '', device), reconnectPeriod: 0 });
    try {
      await client.publishAsync('arteria/v1/demo/deva/status', Buffer.alloc(64 * 1024, 0x20), { qos: 1 });
    } finally {
      await client.endAsync();
    }
  });

  it('follows framing across chunk boundaries: many small packets in odd slices pass, one large header stops it', () => {
    const refused: number[] = [];
    const guard = new PacketSizeGuard(1_000, (n) => refused.push(n));
    const packets = Buffer.concat(Array.from({ length: 50 }, (_, i) => Buffer.concat([Buffer.from([0x30]), remainingLength(900 + i), Buffer.alloc(900 + i)])));
    const passed: Buffer[] = [];
    guard.on('data', (b: Buffer) => passed.push(b));
    for (let i = 0; i < packets.length; i += 7) guard.write(packets.subarray(i, i + 7));
    expect(Buffer.concat(passed).length).toBe(packets.length);
    expect(refused).toEqual([]);
    guard.on('error', () => undefined);
    guard.write(Buffer.concat([Buffer.from([0x30]), remainingLength(1_001)]));
    expect(refused).toEqual([1_001]);
  });
});

describe('guarded connection', () => {
  it('sends what the broker writes between cork and uncork as one socket write, and passes reads through the guard', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address() as AddressInfo;
    const peer = connect(address.port, '127.0.0.1');
    const [socket] = (await once(server, 'connection')) as [Socket];
    try {
      const writes = vi.spyOn(socket, 'write');
      const connection = guardedConnection(socket, 1024, () => undefined);
      // A PUBLISH as MQTT.js and aedes write it: header, topic and payload as separate chunks.
      connection.cork();
      for (const chunk of [Buffer.from([0x30, 0x07, 0x00, 0x01]), Buffer.from('t'), Buffer.from('abcd')]) connection.write(chunk);
      const received = once(peer, 'data');
      process.nextTick(() => connection.uncork());
      const [bytes] = (await received) as [Buffer];
      expect(bytes).toEqual(Buffer.concat([Buffer.from([0x30, 0x07, 0x00, 0x01]), Buffer.from('tabcd')]));
      expect(writes).toHaveBeenCalledTimes(1);
      // Reads still pass the packet guard.
      const read = once(connection, 'data');
      peer.write(Buffer.from([0xc0, 0x00])); // PINGREQ
      expect((await read)[0]).toEqual(Buffer.from([0xc0, 0x00]));
    } finally {
      peer.destroy();
      socket.destroy();
      server.close();
    }
  });
});
