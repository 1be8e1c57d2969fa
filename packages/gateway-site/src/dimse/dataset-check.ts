import { open, type FileHandle } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';

const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
/** Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 Table 7.1-1). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const CHUNK_BYTES = 64 * 1024;

const hex = (tag: number): string => `(${(tag >>> 16).toString(16).padStart(4, '0')},${(tag & 0xffff).toString(16).padStart(4, '0')})`;

/** Reads a file forward through a small window, so a multi-GB data set is walked without loading it. */
class Cursor {
  readonly #file: FileHandle;
  readonly size: number;
  #buffer = Buffer.alloc(0);
  #bufferAt = 0;
  position: number;

  constructor(file: FileHandle, size: number, start: number) {
    this.#file = file;
    this.size = size;
    this.position = start;
  }

  get remaining(): number {
    return this.size - this.position;
  }

  async bytes(count: number, what: string): Promise<Buffer> {
    if (count > this.remaining) throw truncated(what, count - this.remaining);
    const offset = this.position - this.#bufferAt;
    if (offset < 0 || offset + count > this.#buffer.length) {
      const buffer = Buffer.allocUnsafe(Math.max(count, CHUNK_BYTES));
      const { bytesRead } = await this.#file.read(buffer, 0, buffer.length, this.position);
      this.#buffer = buffer.subarray(0, bytesRead);
      this.#bufferAt = this.position;
    }
    const at = this.position - this.#bufferAt;
    this.position += count;
    return this.#buffer.subarray(at, at + count);
  }

  skip(count: number, what: string): void {
    if (count > this.remaining) throw truncated(what, count - this.remaining);
    this.position += count;
  }
}

const truncated = (what: string, missing: number): ArteriaError =>
  new ArteriaError('INVALID_DICOM', `data set truncated: ${what} needs ${missing} more bytes than were received`);

interface Element {
  tag: number;
  vr: string | undefined;
  length: number;
}

async function readElementHeader(cursor: Cursor, explicitVr: boolean): Promise<Element> {
  const head = await cursor.bytes(8, 'an element header');
  const tag = ((head.readUInt16LE(0) << 16) | head.readUInt16LE(2)) >>> 0;
  // Item and delimiter tags carry no VR in any transfer syntax.
  if (!explicitVr || tag === ITEM || tag === ITEM_DELIMITER || tag === SEQUENCE_DELIMITER) return { tag, vr: undefined, length: head.readUInt32LE(4) };
  const vr = head.toString('latin1', 4, 6);
  if (!/^[A-Z]{2}$/.test(vr)) throw new ArteriaError('INVALID_DICOM', `element ${hex(tag)} has no valid VR at byte ${cursor.position - 4}`);
  if (!LONG_VRS.has(vr)) return { tag, vr, length: head.readUInt16LE(6) };
  const long = await cursor.bytes(4, `the length of ${hex(tag)}`);
  return { tag, vr, length: long.readUInt32LE(0) };
}

/** Walks the items of an undefined-length element (a sequence or encapsulated pixel data) up to its delimiter. */
async function walkItems(cursor: Cursor, explicitVr: boolean, owner: number, depth: number): Promise<void> {
  for (;;) {
    const item = await readElementHeader(cursor, false);
    if (item.tag === SEQUENCE_DELIMITER) return;
    if (item.tag !== ITEM) throw new ArteriaError('INVALID_DICOM', `unexpected ${hex(item.tag)} inside ${hex(owner)}`);
    if (item.length === UNDEFINED_LENGTH) await walkElements(cursor, explicitVr, depth + 1, true);
    else cursor.skip(item.length, `an item of ${hex(owner)}`);
  }
}

async function walkElements(cursor: Cursor, explicitVr: boolean, depth: number, untilItemEnd: boolean): Promise<void> {
  if (depth > 32) throw new ArteriaError('INVALID_DICOM', 'sequences nested deeper than 32 levels');
  while (untilItemEnd || cursor.remaining > 0) {
    const element = await readElementHeader(cursor, explicitVr);
    if (element.tag === ITEM_DELIMITER) {
      if (untilItemEnd) return;
      throw new ArteriaError('INVALID_DICOM', 'an item delimiter outside any item');
    }
    if (element.length === UNDEFINED_LENGTH) {
      // Undefined length is only legal for sequences and encapsulated pixel data; UN inside is implicit VR (PS3.5 6.2.2).
      await walkItems(cursor, explicitVr && element.vr !== 'UN', element.tag, depth);
      continue;
    }
    cursor.skip(element.length, `element ${hex(element.tag)}`);
  }
}

/**
 * Proves that a received data set is whole: every element, sequence item and pixel
 * fragment is walked (values skipped, never loaded) and the last one must end exactly at
 * the end of the file. A modality that stopped part-way, or sent bytes that are not a
 * data set, gets `INVALID_DICOM` naming what is missing instead of a success.
 */
export async function assertDatasetComplete(path: string, datasetOffset: number, transferSyntaxUid: string): Promise<void> {
  const explicitVr = transferSyntaxUid !== '1.2.840.10008.1.2';
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    if (size <= datasetOffset) throw new ArteriaError('INVALID_DICOM', 'the C-STORE carried an empty data set');
    await walkElements(new Cursor(file, size, datasetOffset), explicitVr, 0, false);
  } finally {
    await file.close();
  }
}
