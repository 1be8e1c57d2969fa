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
 * The socket as the broker sees it: reads pass the guard, writes go straight out, and the
 * peer's address stays readable for the security log.
 */
export function guardedConnection(socket: Socket, maxPacketBytes: number, onOversize: (declared: number) => void): Duplex {
  const guard = new PacketSizeGuard(maxPacketBytes, onOversize);
  const connection = Duplex.from({ readable: socket.pipe(guard), writable: socket });
  guard.on('error', () => socket.destroy());
  connection.on('close', () => socket.destroy());
  Object.assign(connection, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
  return connection;
}
