import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { PIXEL_DATA_TAG, encodePart10, parseDataSet, parserReason } from '@arteria/dicom';
import { ArteriaError } from '@arteria/protocol';

/** How the files the gateway writes name their writer (file meta information). */
export const GATEWAY_IMPLEMENTATION = { classUid: '2.25.302733481326318939155384587419093104633', versionName: 'ARTERIA_GW' } as const;
const HEADER_BYTES = 4 * 1024 * 1024;

/** What the receiver and routing need of a stored instance, read from its header only. */
export interface InstanceAttributes {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  seriesDescription: string;
  protocolName: string;
  numberOfFrames: number;
  /** Burned In Annotation (0028,0301) as given, '' when absent. */
  burnedInAnnotation: string;
}

/**
 * Opens a Part 10 file for an instance arriving by C-STORE: the file meta header first,
 * then the data set bytes exactly as they come off the association (in the accepted
 * transfer syntax), so a multi-GB run goes to disk without being held in memory.
 */
export function openInstanceFile(
  folder: string,
  meta: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string },
): { path: string; writable: WriteStream; datasetOffset: number } {
  const path = join(folder, `.${randomUUID()}.partial`);
  const header = encodePart10({ ...meta, implementationClassUid: GATEWAY_IMPLEMENTATION.classUid, implementationVersionName: GATEWAY_IMPLEMENTATION.versionName }, {});
  const writable = createWriteStream(path, { flags: 'wx' });
  writable.write(header);
  return { path, writable, datasetOffset: header.length };
}

/** Resolves once the stream is closed and its bytes are on disk (fsync). */
export async function settleInstanceFile(writable: WriteStream, path: string): Promise<void> {
  if (!writable.closed) {
    await new Promise<void>((resolve, reject) => {
      writable.once('close', resolve);
      writable.once('error', reject);
    });
  }
  const file = await open(path, 'r+');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Reads the attributes from the file's header (never its pixels). */
export async function readInstanceAttributes(path: string): Promise<InstanceAttributes> {
  const file = await open(path, 'r');
  let bytes: Buffer;
  try {
    const size = (await file.stat()).size;
    bytes = Buffer.allocUnsafe(Math.min(size, HEADER_BYTES));
    const { bytesRead } = await file.read(bytes, 0, bytes.length, 0);
    bytes = bytes.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
  let ds: dicomParser.DataSet;
  try {
    ds = parseDataSet(bytes, { untilTag: PIXEL_DATA_TAG });
  } catch (err) {
    throw new ArteriaError('INVALID_DICOM', `received instance cannot be parsed: ${parserReason(err)}`, { cause: err });
  }
  const str = (tag: string): string => ds.string(tag)?.trim() ?? '';
  const attributes: InstanceAttributes = {
    studyInstanceUid: str('x0020000d'),
    seriesInstanceUid: str('x0020000e'),
    sopInstanceUid: str('x00080018'),
    sopClassUid: str('x00080016'),
    seriesDescription: str('x0008103e'),
    protocolName: str('x00181030'),
    numberOfFrames: Number(str('x00280008')) || 1,
    burnedInAnnotation: str('x00280301'),
  };
  if (attributes.seriesInstanceUid === '' || attributes.sopInstanceUid === '') throw new ArteriaError('INVALID_DICOM', 'instance without Series or SOP Instance UID');
  return attributes;
}
