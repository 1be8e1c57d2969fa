/** Encapsulated Pixel Data's framing, for the writers that build it (encapsulate.ts, series-frames.ts). */

/** An item's header (FFFE,E000) for a value of `length` bytes, padded to even as items must be. */
export function itemHeader(length: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(0xe000, 2);
  head.writeUInt32LE(length + (length % 2), 4);
  return head;
}

/** The Sequence Delimitation Item (FFFE,E0DD) that ends encapsulated Pixel Data. */
export const SEQUENCE_DELIMITER: Readonly<Buffer> = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
