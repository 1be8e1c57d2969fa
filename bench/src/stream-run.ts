// A large synthetic XA run written straight to disk: a short rendered run stretched to any
// number of frames (each rendered frame repeated), so a 2 GB run never sits in memory.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { SYNTHETIC_DEIDENTIFICATION, decodeFrames, readHeader, synthesizeXaRun, writeXaRun } from '@arteria/dicom';

export const RUN_ROWS = 1024;
export const RUN_COLUMNS = 1024;
const RENDERED_FRAMES = 25;
const FRAME_TIME_MS = 1000 / 15;

/** NumberOfFrames (0028,0008) IS, explicit VR little endian: tag then VR. */
const NUMBER_OF_FRAMES = Buffer.from([0x28, 0x00, 0x08, 0x00, 0x49, 0x53]);
/** Pixel Data (7FE0,0010) OB: tag, VR, two reserved bytes. */
const PIXEL_DATA_OB = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0x00, 0x00]);

/** Frames of 1024x1024 8-bit pixels that make about `mb` megabytes. */
export const framesFor = (mb: number): number => Math.max(4, Math.round((mb * 1e6) / (RUN_ROWS * RUN_COLUMNS)));

/**
 * Writes a run of `frames` frames to `file`; returns its size and SHA-256. The injection
 * of the rendered run is stretched over the whole run.
 */
export async function writeLargeRun(file: string, frames: number, seed: number): Promise<{ size: number; sha256: string }> {
  const rendered = synthesizeXaRun({ seed, rows: RUN_ROWS, columns: RUN_COLUMNS, frames: RENDERED_FRAMES, bitsStored: 8, frameRateHz: 1000 / FRAME_TIME_MS });
  const { frames: stack } = decodeFrames(rendered.bytes);
  const plane = RUN_ROWS * RUN_COLUMNS;
  const header = headerFor(frames, stack.pixels.subarray(0, plane) as Uint8Array);
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    let size = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      hash.update(bytes);
      await handle.write(bytes);
      size += bytes.length;
    };
    await write(header);
    for (let f = 0; f < frames; f++) {
      const source = Math.floor((f * RENDERED_FRAMES) / frames);
      await write(stack.pixels.subarray(source * plane, (source + 1) * plane) as Uint8Array);
    }
    return { size, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** The Part 10 header of a run of `frames` frames, up to and including the Pixel Data element's length. */
function headerFor(frames: number, firstFrame: Uint8Array): Buffer {
  const plane = firstFrame.length;
  const single = writeXaRun({ rows: RUN_ROWS, columns: RUN_COLUMNS, frames: 1, pixels: firstFrame, bitsStored: 8, frameTimeMs: FRAME_TIME_MS, deidentificationMethod: SYNTHETIC_DEIDENTIFICATION });
  const pixelAt = single.length - plane - 12;
  if (!single.subarray(pixelAt, pixelAt + 8).equals(PIXEL_DATA_OB)) throw new Error('the one-frame run does not end with its Pixel Data');
  const head = single.subarray(0, pixelAt);
  const at = head.indexOf(NUMBER_OF_FRAMES);
  if (at < 0) throw new Error('the one-frame run has no NumberOfFrames');
  const oldLength = head.readUInt16LE(at + 6);
  const value = Buffer.from(String(frames).length % 2 === 0 ? String(frames) : `${frames} `, 'latin1');
  const length = Buffer.alloc(2);
  length.writeUInt16LE(value.length);
  const pixelLength = Buffer.alloc(4);
  pixelLength.writeUInt32LE(frames * plane);
  const header = Buffer.concat([head.subarray(0, at + 6), length, value, head.subarray(at + 8 + oldLength), PIXEL_DATA_OB, pixelLength]);
  const parsed = readHeader(Buffer.concat([header, firstFrame]));
  if (parsed.numberOfFrames !== frames) throw new Error(`the written header says ${parsed.numberOfFrames} frames, not ${frames}`);
  return header;
}
