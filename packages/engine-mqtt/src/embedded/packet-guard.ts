import { Duplex, Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Follows MQTT's framing on a connection (a fixed header byte, a remaining length of one
 * to four bytes, then that many bytes) and ends the connection as soon as a header
 * declares a packet over `maxPacketBytes`: the broker's parser never buffers it. Without
 * this the parser collects a packet of any declared size (up to 256 MB) before anything
 * looks at it.
 */
export class PacketSizeGuard extends Transform {
  readonly #max: number;
  readonly #onOversize: (declared: number) => void;
  /** Bytes of the current packet's body still to pass. */
  #remaining = 0;
  /** Inside a header: the remaining-length bytes read so far (-1: expecting the type byte). */
  #lengthBytes = -1;
  #length = 0;
  #multiplier = 1;

  constructor(maxPacketBytes: number, onOversize: (declared: number) => void) {
    super();
    this.#max = maxPacketBytes;
    this.#onOversize = onOversize;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= take;
        i += take;
        continue;
      }
      const byte = chunk[i++] ?? 0;
      if (this.#lengthBytes === -1) {
        this.#lengthBytes = 0;
        this.#length = 0;
        this.#multiplier = 1;
        continue;
      }
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      this.#lengthBytes += 1;
      if ((byte & 0x80) !== 0 && this.#lengthBytes < 4) continue;
      // Header complete (a fifth length byte is malformed: the parser refuses it).
      if (this.#length > this.#max) {
        this.#onOversize(this.#length);
        done(new Error(`MQTT packet of ${this.#length} bytes declared; the limit is ${this.#max}`));
        return;
      }
      this.#remaining = this.#length;
      this.#lengthBytes = -1;
    }
    done(null, chunk);
  }
}

/**
 * The socket as the broker sees it: reads pass the guard; writes go straight out, those
 * made together (the broker writes a packet as several chunks between cork and uncork)
 * as one socket write, so a packet leaves as one TCP segment on a no-delay socket instead
 * of one per chunk; the peer's address stays readable for the security log.
 */
class GuardedConnection extends Duplex {
  readonly #socket: Socket;
  readonly #guard: PacketSizeGuard;

  constructor(socket: Socket, guard: PacketSizeGuard) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#guard = guard;
    socket.pipe(guard);
    guard.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) guard.pause();
    });
    guard.on('end', () => this.push(null));
    guard.on('error', () => socket.destroy());
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.#guard.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#socket.write(chunk, done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (error?: Error | null) => void): void {
    this.#socket.write(chunks.length === 1 ? (chunks[0]?.chunk ?? Buffer.alloc(0)) : Buffer.concat(chunks.map((c) => c.chunk)), done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#socket.end(() => done());
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.#socket.destroy();
    done(error);
  }
}

export function guardedConnection(socket: Socket, maxPacketBytes: number, onOversize: (declared: number) => void): Duplex {
  const connection = new GuardedConnection(socket, new PacketSizeGuard(maxPacketBytes, onOversize));
  Object.assign(connection, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
  return connection;
}
