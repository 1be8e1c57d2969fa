import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { decodeFrames, mulberry32, newerVrElements, parseDataSet, readHeader, synthesizeXaRun, uniform, visitHeaderElements } from '@arteria/dicom';

/** An explicit-VR element with a 4-byte length (OB's layout: OV, SV, UV, SQ). */
function longElement(group: number, element: number, vr: string, value: Buffer, undefinedLength = false): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, 'latin1');
  head.writeUInt32LE(undefinedLength ? 0xffffffff : value.length, 8);
  return Buffer.concat([head, value]);
}

const delimiter = (element: number): Buffer => Buffer.from([0xfe, 0xff, element & 0xff, element >> 8, 0, 0, 0, 0]);

/**
 * A native run with a signed 64-bit (SV) element before Pixel Data, and a sequence whose
 * item (undefined length) holds an unsigned 64-bit (UV) one.
 */
function runWithNewerVrs(): Buffer {
  const { bytes } = synthesizeXaRun({ seed: 5, rows: 16, columns: 16, frames: 4, bitsStored: 8 });
  const pixelTag = bytes.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  const sv = Buffer.alloc(8);
  sv.writeBigInt64LE(-5n);
  const uv = Buffer.alloc(8);
  uv.writeBigUInt64LE(2n ** 40n);
  const item = Buffer.concat([Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]), longElement(0x0040, 0xa0b0, 'UV', uv), delimiter(0xe00d)]);
  const sequence = Buffer.concat([longElement(0x0040, 0xa730, 'SQ', item, true), delimiter(0xe0dd)]);
  return Buffer.concat([bytes.subarray(0, pixelTag), longElement(0x0018, 0x9219, 'SV', sv), sequence, bytes.subarray(pixelTag)]);
}

describe('OV, SV and UV elements (DICOM 2019), which dicom-parser 1.8 does not know', () => {
  it('are read, nested ones included, and the bytes are left as they were', () => {
    const bytes = runWithNewerVrs();
    expect(() => dicomParser.parseDicom(Buffer.from(bytes))).toThrow();
    expect(newerVrElements(bytes).map((e) => `${e.tag} ${e.vr}`)).toEqual(['00189219 SV', '0040A0B0 UV']);
    const copy = Buffer.from(bytes);
    const dataSet = parseDataSet(bytes);
    expect(bytes.equals(copy)).toBe(true);
    const sv = dataSet.elements.x00189219!;
    expect(Buffer.from(bytes.subarray(sv.dataOffset, sv.dataOffset + sv.length)).readBigInt64LE()).toBe(-5n);
    expect(dataSet.elements.x0040a730?.items?.[0]?.dataSet?.elements.x0040a0b0?.length).toBe(8);
    expect(readHeader(bytes).rows).toBe(16);
    expect(decodeFrames(bytes).frames.frameCount).toBe(4);
  });

  it('are looked for without throwing or changing anything, whatever the bytes', () => {
    const original = runWithNewerVrs();
    const random = uniform(mulberry32(7));
    for (let n = 0; n < 3000; n++) {
      const bytes = Buffer.from(original);
      // A few bytes of the header changed at random: lengths, VRs, tags and delimiters among them.
      for (let k = 0; k < 1 + Math.floor(random() * 4); k++) bytes[132 + Math.floor(random() * (bytes.length - 132 - 1024))] = Math.floor(random() * 256);
      const copy = Buffer.from(bytes);
      expect(() => visitHeaderElements(bytes, () => undefined)).not.toThrow();
      try {
        parseDataSet(bytes);
      } catch {
        // dicom-parser's own report of a broken file; what matters is below
      }
      expect(bytes.equals(copy)).toBe(true);
    }
  });
});
