import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import dicomParser from 'dicom-parser';
import { ArteriaError } from '@arteria/protocol';
import { deidentify, type DeidentifiedRun } from './deidentify.js';
import type { DeidentificationKey } from './key.js';
import type { DeidentificationProfile } from './profile.js';

const PIXEL_DATA = 'x7fe00010';
const LITTLE_ENDIAN = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

/** Where the top-level Pixel Data element starts in a file, when the header can be rewritten in front of it. */
async function pixelDataStart(path: string, maxHeaderBytes: number): Promise<{ header: Buffer; start: number; burnedIn: boolean } | undefined> {
  const file = await open(path, 'r');
  let header: Buffer;
  try {
    const size = (await file.stat()).size;
    header = Buffer.allocUnsafe(Math.min(size, maxHeaderBytes));
    let filled = 0;
    while (filled < header.length) {
      const { bytesRead } = await file.read(header, filled, header.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    header = header.subarray(0, filled);
  } finally {
    await file.close();
  }
  let element: { dataOffset: number } | undefined;
  let syntax: string | undefined;
  let burnedIn = false;
  try {
    const ds = dicomParser.parseDicom(header, { untilTag: PIXEL_DATA });
    syntax = ds.string('x00020010')?.trim();
    burnedIn = ds.string('x00280301')?.trim().toUpperCase() === 'YES';
    element = ds.elements[PIXEL_DATA];
  } catch {
    return undefined; // the in-memory path reports what is wrong
  }
  if (element === undefined || syntax === undefined || !LITTLE_ENDIAN.has(syntax)) return undefined;
  // Pixel Data's element header: tag, then (explicit VR) "OB"/"OW", 2 reserved bytes and a
  // 4-byte length; (implicit VR) a 4-byte length.
  const start = element.dataOffset - (syntax === '1.2.840.10008.1.2' ? 8 : 12);
  const tagHere = start >= 132 && header.readUInt16LE(start) === 0x7fe0 && header.readUInt16LE(start + 2) === 0x0010;
  return tagHere ? { header, start, burnedIn } : undefined;
}

/**
 * De-identifies a run file into `destination` without reading its pixels into memory:
 * the header (everything before the top-level Pixel Data) is de-identified and written,
 * then the pixel bytes are copied as they are. Runs whose pixels must change (masking of
 * burned-in annotation) or whose layout does not allow it (big endian, deflated, a header
 * larger than maxHeaderBytes) go through the in-memory path. The destination is fsynced.
 */
export async function deidentifyFile(
  source: string,
  destination: string,
  profile: DeidentificationProfile,
  key: DeidentificationKey,
  maxHeaderBytes = 4 * 1024 * 1024,
): Promise<Omit<DeidentifiedRun, 'bytes'>> {
  const located = await pixelDataStart(source, maxHeaderBytes);
  // Masking changes pixels: that run goes through memory. (A refusing policy refuses from the header alone.)
  const found = located?.burnedIn === true && profile.burnedInAnnotation.policy === 'mask' ? undefined : located;
  const headerOnly = found && deidentify(found.header.subarray(0, found.start), profile, key);
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
