import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';
import { deidentify, type DeidentifiedRun } from './deidentify.js';
import type { DeidentificationKey } from './key.js';
import { locatePixelData } from './pixel-data.js';
import type { DeidentificationProfile } from './profile.js';

/** The first bytes of a file (up to maxBytes). */
async function readStart(path: string, maxBytes: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    const header = Buffer.allocUnsafe(Math.min(size, maxBytes));
    let filled = 0;
    while (filled < header.length) {
      const { bytesRead } = await file.read(header, filled, header.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return header.subarray(0, filled);
  } finally {
    await file.close();
  }
}

/**
 * De-identifies a run file into `destination` without reading its pixels into memory:
 * the header (everything before the top-level Pixel Data) is de-identified and written,
 * then the pixel bytes are copied as they are. Runs whose pixels must change (masking of
 * burned-in annotation in native pixels) or whose layout does not allow it (big endian,
 * deflated, a header larger than maxHeaderBytes) go through the in-memory path. Compressed
 * (encapsulated) pixel data is copied as it is: offset table and fragments byte for byte. The destination is fsynced.
 */
export async function deidentifyFile(
  source: string,
  destination: string,
  profile: DeidentificationProfile,
  key: DeidentificationKey,
  maxHeaderBytes = 4 * 1024 * 1024,
): Promise<Omit<DeidentifiedRun, 'bytes'>> {
  const header = await readStart(source, maxHeaderBytes);
  const located = locatePixelData(header);
  // Masking changes native pixels: that run goes through memory. A refusing policy refuses from
  // the header alone, and so does masking of compressed pixels (which cannot be edited).
  const found = located?.burnedIn === true && profile.burnedInAnnotation.policy === 'mask' && !located.encapsulated ? undefined : located;
  const headerOnly = found && deidentify(header.subarray(0, found.start), profile, key);
  const whole = found === undefined ? deidentify(await readWhole(source), profile, key) : undefined;
  const out = await open(destination, 'wx');
  let closed = false;
  try {
    if (whole !== undefined) {
      const { bytes, ...run } = whole;
      await out.writeFile(bytes);
      await out.sync();
      return run;
    }
    if (headerOnly === undefined || found === undefined) throw new ArteriaError('INTERNAL', 'no header was de-identified');
    const { bytes, ...run } = headerOnly;
    await out.write(bytes);
    for await (const chunk of createReadStream(source, { start: found.start, highWaterMark: 1024 * 1024 })) {
      await out.write(chunk as Buffer);
    }
    await out.sync();
    return run;
  } catch (err) {
    closed = true;
    await out.close();
    await rm(destination, { force: true });
    throw err;
  } finally {
    if (!closed) await out.close();
  }
}

async function readWhole(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    return await file.readFile();
  } finally {
    await file.close();
  }
}
