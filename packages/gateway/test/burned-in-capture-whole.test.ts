import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, synthesizeXaRun } from '@arteria/dicom';
import { Gateway, readGrowingHeader } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, objectBytes, startServersWithResponder, type Responder, type Servers } from './helpers.js';

const MULTIFRAME_GRAYSCALE_BYTE_SC = '1.2.840.10008.5.1.4.1.1.7.2';
const ROWS = 32;
const COLUMNS = 32;

/** A grayscale screen capture of `frames` frames, as a lab's recorder stores one: Burned In Annotation as given (undefined: absent). */
function capture(burnedIn: string | undefined, sopClassUid = MULTIFRAME_GRAYSCALE_BYTE_SC): Buffer {
  const bytes = synthesizeXaRun({ seed: 21, rows: ROWS, columns: COLUMNS, frames: 6, bitsStored: 8 }).bytes;
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  dict.meta['00020002'] = { vr: 'UI', Value: [sopClassUid] };
  dict.dict['00080016'] = { vr: 'UI', Value: [sopClassUid] };
  if (burnedIn === undefined) delete dict.dict['00280301'];
  else dict.dict['00280301'] = { vr: 'CS', Value: [burnedIn] };
  return Buffer.from(dict.write());
}

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

afterAll(async () => servers?.close());

describe('a capture that may show burned-in annotation, large enough to go in segments', () => {
  it('is taken as possibly burned in by the header reader, as de-identification takes it', () => {
    expect(readGrowingHeader(capture(undefined))?.burnedIn).toBe(true);
    expect(readGrowingHeader(capture('YES'))?.burnedIn).toBe(true);
    expect(readGrowingHeader(capture('NO'))?.burnedIn).toBe(false);
    expect(readGrowingHeader(capture(undefined, '1.2.840.10008.5.1.4.1.1.12.1'))?.burnedIn).toBe(false); // an XA run that does not say
  });

  it('goes whole under the mask policy and is masked, instead of being refused for want of pixels', async () => {
    const region = { x: 0, y: 0, width: COLUMNS, height: 4 };
    await using gateway = new Gateway(
      gatewayOptions(servers, 'capture-1', { segmentWholeFilesOverBytes: 1, deidentification: { enabled: true, profile: { burnedInAnnotation: { policy: 'mask', regions: [region] } } } }),
      { logger: memoryLogger() },
    );
    await gateway.start();
    const path = join(await mkdtemp(join(servers.directory, 'capture-')), 'recording.dcm');
    await writeFile(path, capture(undefined));
    const result = await gateway.send(path);
    expect(result.status).toBe('ok');
    const [sent] = responder.requestsOf('capture-1');
    const { header, frames } = decodeFrames(await objectBytes(servers.s3, sent?.request.inputs[0]?.uri ?? ''));
    expect([header.numberOfFrames, frames.frameCount]).toEqual([6, 6]);
    // The first four rows of every frame are zero; the rest is the run's.
    for (let f = 0; f < 6; f++) {
      const frame = frames.pixels.subarray(f * ROWS * COLUMNS, (f + 1) * ROWS * COLUMNS);
      expect(Array.from(frame.subarray(0, 4 * COLUMNS)).every((v) => v === 0)).toBe(true);
      expect(Array.from(frame.subarray(4 * COLUMNS)).some((v) => v !== 0)).toBe(true);
    }
  });
});
