import { connect, type Socket } from 'node:net';

/**
 * A DICOM upper-layer client written from PS3.8 by hand, so a test can do what a
 * well-behaved SCU never does: stop a data set short, abort mid-transfer, drop the line.
 */

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.8.1055.99.1';
const MAX_PDU = 16 * 1024;
const PDU = { associateRq: 1, associateAc: 2, associateRj: 3, pData: 4, releaseRq: 5, releaseRp: 6, abort: 7 } as const;

export interface Pdu {
  type: number;
  body: Buffer;
}

/** A Part 10 file split into what travels on the wire: the data set and its transfer syntax. */
export interface WireObject {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  dataset: Buffer;
}

const uid = (value: string): Buffer => {
  const bytes = Buffer.from(value, 'latin1');
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from([0])]);
};
const text = (bytes: Buffer): string => bytes.toString('latin1').replace(/[\0 ]+$/, '');

/** Splits a Part 10 file: its meta header (explicit VR little endian, PS3.10 7.1) and the data set after it. */
export function wireObject(part10: Buffer): WireObject {
  if (part10.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a Part 10 file');
  let at = 132;
  let end = Number.POSITIVE_INFINITY;
  const meta = new Map<number, Buffer>();
  while (at < end && at < part10.length) {
    const element = part10.readUInt16LE(at + 2);
    if (part10.readUInt16LE(at) !== 0x0002) break;
    const vr = part10.toString('latin1', at + 4, at + 6);
    const long = ['OB', 'OW', 'UN', 'SQ', 'UT'].includes(vr);
    const length = long ? part10.readUInt32LE(at + 8) : part10.readUInt16LE(at + 6);
    const value = long ? part10.subarray(at + 12, at + 12 + length) : part10.subarray(at + 8, at + 8 + length);
    at = value.byteOffset - part10.byteOffset + length;
    if (element === 0x0000) end = at + value.readUInt32LE(0);
    meta.set(element, value);
  }
  const field = (element: number): string => text(meta.get(element) ?? Buffer.alloc(0));
  return { sopClassUid: field(0x0002), sopInstanceUid: field(0x0003), transferSyntaxUid: field(0x0010), dataset: part10.subarray(at) };
}

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function item(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

const aeTitle = (title: string): Buffer => Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'latin1');

function associateRq(called: string, calling: string, abstractSyntax: string, transferSyntax: string): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(1, 0);
  aeTitle(called).copy(fixed, 4);
  aeTitle(calling).copy(fixed, 20);
  const context = item(0x20, Buffer.concat([Buffer.from([1, 0, 0, 0]), item(0x30, Buffer.from(abstractSyntax)), item(0x40, Buffer.from(transferSyntax))]));
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(MAX_PDU, 0);
  const user = item(0x50, Buffer.concat([item(0x51, maxLength), item(0x52, Buffer.from(IMPLEMENTATION_CLASS_UID))]));
  return pdu(PDU.associateRq, Buffer.concat([fixed, item(0x10, Buffer.from(APPLICATION_CONTEXT)), context, user]));
}

/** One implicit-VR little-endian element (command sets are always implicit VR LE). */
function element(tag: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(tag >>> 16, 0);
  head.writeUInt16LE(tag & 0xffff, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}
const us = (value: number): Buffer => {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value, 0);
  return bytes;
};

function cStoreRq(messageId: number, object: WireObject): Buffer {
  const body = Buffer.concat([
    element(0x00000002, uid(object.sopClassUid)),
    element(0x00000100, us(0x0001)),
    element(0x00000110, us(messageId)),
    element(0x00000700, us(0)),
    element(0x00000800, us(0x0000)),
    element(0x00001000, uid(object.sopInstanceUid)),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length, 0);
  return Buffer.concat([element(0x00000000, length), body]);
}

function pdv(data: Buffer, command: boolean, last: boolean): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(data.length + 2, 0);
  head.writeUInt8(1, 4);
  head.writeUInt8((command ? 1 : 0) | (last ? 2 : 0), 5);
  return pdu(PDU.pData, Buffer.concat([head, data]));
}

/** The status (0000,0900) of a DIMSE response command carried in a P-DATA-TF PDU. */
function responseStatus(body: Buffer): number {
  let at = 6; // PDV item length (4), context id, control header
  while (at + 8 <= body.length) {
    const tag = ((body.readUInt16LE(at) << 16) | body.readUInt16LE(at + 2)) >>> 0;
    const length = body.readUInt32LE(at + 4);
    if (tag === 0x00000900) return body.readUInt16LE(at + 8);
    at += 8 + length;
  }
  throw new Error('no status in the response');
}

export class RawDicomClient {
  readonly #socket: Socket;
  readonly #pdus: Pdu[] = [];
  readonly #waiters: ((pdu: Pdu | undefined) => void)[] = [];
  #buffer = Buffer.alloc(0);
  #messageId = 0;
  /** The socket's last error (a reset from the gateway is one way of closing; 'close' follows it). */
  lastError: Error | undefined;
  /** Resolves when the gateway (or this client) closed the connection. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#take(chunk));
    socket.on('error', (err) => {
      this.lastError = err;
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    });
  }

  static async connect(port: number): Promise<RawDicomClient> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawDicomClient(socket);
  }

  /** Associates for one SOP class in one transfer syntax; throws unless the context is accepted. */
  async associate(called: string, calling: string, object: WireObject): Promise<void> {
    this.#socket.write(associateRq(called, calling, object.sopClassUid, object.transferSyntaxUid));
    const answer = await this.next();
    if (answer.type !== PDU.associateAc) throw new Error(`association not accepted (PDU type ${answer.type})`);
  }

  /** Sends a C-STORE: the command, then `dataset` (by default the whole object) in PDUs; `last: false` leaves it unfinished. */
  sendStore(object: WireObject, dataset: Buffer = object.dataset, last = true): void {
    this.#messageId += 1;
    this.#socket.write(pdv(cStoreRq(this.#messageId, object), true, true));
    const chunk = MAX_PDU - 12;
    for (let at = 0; at < dataset.length; at += chunk) {
      const part = dataset.subarray(at, at + chunk);
      this.#socket.write(pdv(part, false, last && at + chunk >= dataset.length));
    }
  }

  /** Sends more of the data set of the C-STORE in progress (after sendStore with `last: false`). */
  sendMore(dataset: Buffer, last = true): void {
    const chunk = MAX_PDU - 12;
    for (let at = 0; at < dataset.length; at += chunk) {
      this.#socket.write(pdv(dataset.subarray(at, at + chunk), false, last && at + chunk >= dataset.length));
    }
  }

  /** Waits for the C-STORE response and returns its status. */
  async storeStatus(): Promise<number> {
    const answer = await this.next();
    if (answer.type !== PDU.pData) throw new Error(`expected a C-STORE response, got PDU type ${answer.type}`);
    return responseStatus(answer.body);
  }

  async store(object: WireObject, dataset?: Buffer): Promise<number> {
    this.sendStore(object, dataset);
    return this.storeStatus();
  }

  async release(): Promise<void> {
    this.#socket.write(pdu(PDU.releaseRq, Buffer.alloc(4)));
    const answer = await this.next();
    if (answer.type !== PDU.releaseRp) throw new Error(`expected A-RELEASE-RP, got PDU type ${answer.type}`);
  }

  /** A-ABORT from the service user; the client keeps its side open, so only the gateway can close it. */
  abort(): void {
    this.#socket.write(pdu(PDU.abort, Buffer.from([0, 0, 0, 0])));
  }

  /** Writes raw bytes (for example half a PDU). */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** Drops the TCP connection without any DICOM goodbye (a cable pulled, a modality crashed). */
  drop(): void {
    this.#socket.resetAndDestroy();
  }

  get isOpen(): boolean {
    return !this.#socket.destroyed && this.#socket.readyState === 'open';
  }

  /** The next PDU from the gateway; rejects if the connection closes first. */
  async next(): Promise<Pdu> {
    const ready = this.#pdus.shift();
    if (ready !== undefined) return ready;
    const pduOrEnd = await new Promise<Pdu | undefined>((resolve) => this.#waiters.push(resolve));
    if (pduOrEnd === undefined) throw new Error('the connection closed');
    return pduOrEnd;
  }

  #take(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 6) {
      const length = this.#buffer.readUInt32BE(2);
      if (this.#buffer.length < 6 + length) return;
      const parsed = { type: this.#buffer.readUInt8(0), body: this.#buffer.subarray(6, 6 + length) };
      this.#buffer = this.#buffer.subarray(6 + length);
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(parsed);
      else this.#pdus.push(parsed);
    }
  }
}

/** Half of a P-DATA-TF PDU: the header announces more bytes than follow. */
export function halfPdu(dataset: Buffer): Buffer {
  const whole = pdv(dataset.subarray(0, Math.min(dataset.length, MAX_PDU - 12)), false, false);
  return whole.subarray(0, Math.floor(whole.length / 2));
}
