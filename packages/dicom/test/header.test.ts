import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { SYNTHETIC_DEIDENTIFICATION, assertMultiFrameRun, readHeader, readHeaderFromFile, synthesizeXaRun, writeXaRun, type DicomHeader } from '@arteria/dicom';
import { expectArteriaError, modify, scratch } from './helpers.js';

const ROWS = 24;
const COLUMNS = 20;
const FRAMES = 6;

function sampleRun(): Buffer {
  return writeXaRun({
    rows: ROWS,
    columns: COLUMNS,
    frames: FRAMES,
    pixels: new Uint16Array(ROWS * COLUMNS * FRAMES).fill(700),
    bitsStored: 10,
    photometric: 'MONOCHROME1',
    frameTimeMs: 40,
    patient: { name: 'Doe^Jane', id: 'P-1', birthDate: '19800102' },
    studyInstanceUid: '1.2.3.4.1',
    seriesInstanceUid: '1.2.3.4.2',
    sopInstanceUid: '1.2.3.4.3',
    windowCenter: 512,
    windowWidth: 1024,
  });
}

describe('readHeader', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('reads back what writeXaRun wrote', () => {
    const header = readHeader(sampleRun());
    expect(header).toEqual({
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.12.1',
      sopInstanceUid: '1.2.3.4.3',
      studyInstanceUid: '1.2.3.4.1',
      seriesInstanceUid: '1.2.3.4.2',
      modality: 'XA',
      rows: ROWS,
      columns: COLUMNS,
      numberOfFrames: FRAMES,
      bitsAllocated: 16,
      bitsStored: 10,
      pixelRepresentation: 0,
      samplesPerPixel: 1,
      photometricInterpretation: 'MONOCHROME1',
      planarConfiguration: 0,
      frameTimeMs: 40,
      windowCenter: 512,
      windowWidth: 1024,
      hasPixelData: true,
      patientIdentityRemoved: '',
      deidentificationMethod: '',
    } satisfies DicomHeader);
  });

  it('reads what a file declares about its de-identification', () => {
    const declared = synthesizeXaRun({ seed: 5, rows: 16, columns: 16, frames: 2 });
    expect(readHeader(declared.bytes)).toMatchObject({ patientIdentityRemoved: 'YES', deidentificationMethod: SYNTHETIC_DEIDENTIFICATION });
    const undeclared = synthesizeXaRun({ seed: 5, rows: 16, columns: 16, frames: 2, declareDeidentified: false });
    expect(readHeader(undeclared.bytes)).toMatchObject({ patientIdentityRemoved: '', deidentificationMethod: '' });
  });

  it('reads the header from the first chunk of a file, not its pixels', async () => {
    const bytes = sampleRun();
    // Cut inside the pixel data: the header is whole, the pixels are not.
    const path = tmp.path('run.dcm');
    await writeFile(path, bytes);
    const header = await readHeaderFromFile(path, { maxHeaderBytes: bytes.length - 500 });
    expect(header.sopInstanceUid).toBe('1.2.3.4.3');
    expect(header.numberOfFrames).toBe(FRAMES);
    expect(readHeader(bytes.subarray(0, bytes.length - 500)).rows).toBe(ROWS);
  });

  it('says when the header does not fit the chunk it read', async () => {
    const path = tmp.path('run-short.dcm');
    await writeFile(path, sampleRun());
    const err = await readHeaderFromFile(path, { maxHeaderBytes: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArteriaError);
    expect((err as ArteriaError).code).toBe('INVALID_DICOM');
    expect((err as ArteriaError).message).toMatch(/maxHeaderBytes/);
  });

  it('rejects a file without the preamble and DICM prefix', async () => {
    const message = expectArteriaError(() => readHeader(new TextEncoder().encode('not dicom at all')), 'INVALID_DICOM');
    expect(message).toMatch(/DICM/);
    const noPrefix = Buffer.alloc(4096, 7);
    expectArteriaError(() => readHeader(noPrefix), 'INVALID_DICOM');
    const path = tmp.path('text.dcm');
    await writeFile(path, 'hello\n'.repeat(100));
    await expect(readHeaderFromFile(path)).rejects.toMatchObject({ code: 'INVALID_DICOM' });
  });

  it('rejects a header cut short', () => {
    expectArteriaError(() => readHeader(sampleRun().subarray(0, 400)), 'INVALID_DICOM');
  });

  it('takes the frame rate of an enhanced object from its frames\' acquisition times, else its recommended display rate', async () => {
    // As an Enhanced XA object may be written: no Frame Time, Frame Time Vector or Cine Rate.
    const bare = await modify(tmp.dir, sampleRun(), ['-e', '(0018,1063)', '-e', '(0018,0040)', '-e', '(0028,0009)']);
    expect(readHeader(bare).frameTimeMs).toBeUndefined();
    // 7.5 frames/s: 133.333 ms apart, across a minute boundary.
    const times = ['20240101115959.800000', '20240101115959.933333', '20240101120000.066667'];
    const perFrame = times.flatMap((t, i) => ['-i', `(5200,9230)[${i}].(0020,9111)[0].(0018,9074)=${t}`]);
    expect(readHeader(await modify(tmp.dir, bare, perFrame)).frameTimeMs).toBeCloseTo(133.333, 2);
    // Times that do not increase say nothing; the recommended display rate is what is left.
    const unordered = ['-i', `(5200,9230)[0].(0020,9111)[0].(0018,9074)=${times[1]}`, '-i', `(5200,9230)[1].(0020,9111)[0].(0018,9074)=${times[0]}`];
    expect(readHeader(await modify(tmp.dir, bare, unordered)).frameTimeMs).toBeUndefined();
    expect(readHeader(await modify(tmp.dir, bare, [...unordered, '-i', '(0008,2144)=15'])).frameTimeMs).toBeCloseTo(66.667, 2);
  });

  it('names the essentials a header lacks', async () => {
    const noRows = await modify(tmp.dir, sampleRun(), ['-e', '(0028,0010)', '-e', '(0008,0018)']);
    const message = expectArteriaError(() => readHeader(noRows), 'INVALID_DICOM');
    expect(message).toMatch(/Rows/);
    expect(message).toMatch(/SOPInstanceUID/);
  });
});

describe('assertMultiFrameRun', () => {
  const good = readHeader(sampleRun());

  it('accepts a grayscale multi-frame run of any modality', () => {
    expect(() => assertMultiFrameRun(good)).not.toThrow();
    expect(() => assertMultiFrameRun({ ...good, modality: 'RF', bitsAllocated: 8, bitsStored: 8 })).not.toThrow();
    expect(() => assertMultiFrameRun({ ...good, modality: 'CT' })).not.toThrow();
  });

  it.each([
    [{ hasPixelData: false }, /Pixel Data/],
    [{ samplesPerPixel: 2 }, /SamplesPerPixel 2/],
    [{ samplesPerPixel: 3 }, /MONOCHROME1" with 3 samples/],
    [{ photometricInterpretation: 'RGB' }, /RGB/],
    [{ bitsAllocated: 32, bitsStored: 32 }, /BitsAllocated 32/],
    [{ bitsAllocated: 8, bitsStored: 12 }, /BitsStored 12/],
    [{ pixelRepresentation: 1 }, /PixelRepresentation 1/],
    [{ numberOfFrames: 1 }, /NumberOfFrames 1/],
  ] as [Partial<DicomHeader>, RegExp][])('rejects %o', (change, pattern) => {
    expect(expectArteriaError(() => assertMultiFrameRun({ ...good, ...change }), 'UNSUPPORTED_DICOM')).toMatch(pattern);
  });
});
