import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { readFile, writeFile } from 'node:fs/promises';
import { decodeRun, encapsulateFrames, JPEG_2000_LOSSLESS, readHeader, readSegmentedHeader, seriesFrameOf, synthesizeXaRun } from '@arteria/dicom';
import { nestedSequences, writeColorRun, writeSingleFrameSeries } from '@arteria/testing';
import { dcmtk, scratch, transform } from './helpers.js';

/** Bounded runs with a fixed seed: the same inputs every time, seconds in CI. */
const RUNS = { numRuns: Number(process.env.FUZZ_RUNS ?? 250), seed: Number(process.env.FUZZ_SEED ?? 20261204) } as const;

/** A change to a valid file: bytes overwritten (mostly in the header), cut short, or bytes inserted. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: 1200 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat({ max: 4000 }), bytes: fc.constant(new Uint8Array(0)) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat({ max: 1200 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(source: Uint8Array, changes: Mutation[]): Buffer {
  let out = Buffer.from(source);
  for (const { kind, at, bytes } of changes) {
    const i = Math.min(at, out.length);
    if (kind === 'flip') out.set(bytes.subarray(0, Math.max(0, out.length - i)), i);
    else if (kind === 'cut') out = out.subarray(0, i);
    else out = Buffer.concat([out.subarray(0, i), bytes, out.subarray(i)]);
  }
  return out;
}

async function typedOnly(work: () => unknown): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof ArteriaError)) throw new Error(`untyped failure: ${String(err)}`, { cause: err });
  }
}

/** The DICOM reader: a damaged file is read or refused with a typed error, never a crash or a hang. */
describe('fuzz: DICOM reader', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  const native = synthesizeXaRun({ seed: 9, rows: 16, columns: 16, frames: 2, bitsStored: 12 }).bytes;
  const seeds: Buffer[] = [native, nestedSequences(3)];
  beforeAll(async () => {
    tmp = await scratch();
    for (const [tool, flags] of [['dcmcjpeg', ['+e1']], ['dcmcrle', []], ['dcmconv', ['+ti']], ['dcmconv', ['+td']]] as const) seeds.push(await transform(tmp.dir, native, tool, [...flags]));
  });
  afterAll(async () => tmp.cleanup());

  it('readHeader and decodeRun on mutated native, implicit, deflated, JPEG and RLE runs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (which, changes) => {
        const bytes = mutate(seeds[which] ?? native, changes);
        await typedOnly(() => readHeader(bytes));
        await typedOnly(() => decodeRun(bytes));
      }),
      RUNS,
    );
  }, 120_000);

  it('readHeader, decodeRun, readSegmentedHeader and seriesFrameOf on mutated color, JPEG-LS, JPEG 2000 and single-frame runs', async () => {
    const more: Buffer[] = [];
    const color = writeColorRun({ rows: 8, columns: 6, frames: 2, rgb: (f, p) => [(p * 9 + f) & 255, (p * 5) & 255, 200 - p] });
    more.push(Buffer.from(color), await transform(tmp.dir, color, 'dcmcjpeg', ['+eb']), await transform(tmp.dir, color, 'dcmcjpls', []));
    more.push(await transform(tmp.dir, await transform(tmp.dir, color, 'dcmcjpeg', ['+e1']), 'dcmdjpeg', ['+pl'])); // color by plane
    more.push(await transform(tmp.dir, native, 'dcmcjpls', []));
    // JPEG 2000 frames from OpenJPEG, 12 of 16 bits.
    const gray = synthesizeXaRun({ seed: 10, rows: 16, columns: 16, frames: 2, bitsStored: 12 });
    const { frames } = await decodeRun(gray.bytes);
    const codestreams: Uint8Array[] = [];
    for (let f = 0; f < 2; f++) {
      const samples = Buffer.alloc(16 * 16 * 2);
      for (let p = 0; p < 256; p++) samples.writeUInt16BE(frames.pixels[f * 256 + p] ?? 0, p * 2);
      await writeFile(tmp.path(`gray-${f}.pgm`), Buffer.concat([Buffer.from('P5\n16 16\n4095\n', 'latin1'), samples]));
      await dcmtk('opj_compress', ['-i', tmp.path(`gray-${f}.pgm`), '-o', tmp.path(`gray-${f}.j2k`), '-n', '2']);
      codestreams.push(new Uint8Array(await readFile(tmp.path(`gray-${f}.j2k`))));
    }
    more.push(Buffer.from(encapsulateFrames(gray.bytes, JPEG_2000_LOSSLESS, codestreams)));
    const [single] = await writeSingleFrameSeries(tmp.dir, { studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4', count: 1, rows: 8, columns: 8, frame: () => new Uint8Array(64).fill(7) });
    more.push(await readFile(single!));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: more.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (which, changes) => {
        const bytes = mutate(more[which]!, changes);
        await typedOnly(() => readHeader(bytes));
        await typedOnly(() => decodeRun(bytes));
        await typedOnly(() => readSegmentedHeader(bytes));
        await typedOnly(() => seriesFrameOf(bytes));
      }),
      RUNS,
    );
  }, 180_000);

  it('arbitrary bytes after a Part 10 prefix', async () => {
    const prefix = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM')]);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (body) => {
        const bytes = Buffer.concat([prefix, body]);
        await typedOnly(() => readHeader(bytes));
        await typedOnly(() => decodeRun(bytes));
      }),
      RUNS,
    );
  }, 120_000);
});
