// A segment step's segment read ahead while the steps before it fold: taken by its fold,
// once; a read ahead that failed is read again by the fold; bytes no fold took are let go;
// segments stored compressed are expanded into spare memory of their run's frame size.
import { createHash } from 'node:crypto';
import { brotliCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ArteriaError, MAX_SEGMENT_BYTES, SEGMENT_CONTENT_TYPE, epochNow, requestOfRunOpen, type SegmentRef } from '@arteria/protocol';
import type { FetchOptions, InputSource, TaskV1 } from '@arteria/ports';
import { SegmentReads } from '../src/segmented/segment-reads.js';

const PREFIX = 's3://runs/acme/cath-lab-1/run-1';
const bytes = new Uint8Array(4096).fill(7);
const object: SegmentRef = { uri: `${PREFIX}/s3`, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), contentType: SEGMENT_CONTENT_TYPE };
const header = { uri: `${PREFIX}/header`, size: 10, sha256: 'a'.repeat(64), contentType: 'application/dicom' as const };
const now = epochNow();
const request = requestOfRunOpen({ v: 1, kind: 'run-open', id: 'r1', tenant: 'acme', device: 'cath-lab-1', algorithm: 'tally@^1', instanceUid: '1.2.3', header, priority: 'clinical', timings: { acquired: now, uploaded: now, published: now } });
const algorithm = { name: 'tally', version: '1.0.0', digest: `sha256:${'b'.repeat(64)}` };
const step = { phase: 'segment' as const, index: 3, firstFrame: 12, frameCount: 4, object };
const task = (segmented: TaskV1['segmented']): TaskV1 => ({ v: 1, request, algorithm, segmented });

/** A source that counts its reads and fails the first `failures` of them. */
function source(failures = 0): InputSource & { reads: number } {
  const counting = {
    reads: 0,
    fetch: () => {
      counting.reads += 1;
      if (counting.reads <= failures) return Promise.reject(new ArteriaError('STORAGE_UNAVAILABLE', 'the store is down'));
      return Promise.resolve(Buffer.from(bytes));
    },
    stream: () => {
      throw new Error('segments are read whole');
    },
  };
  return counting;
}

describe('segments read ahead of their fold', () => {
  it('gives the fold the bytes read ahead for its segment, once', async () => {
    const inputs = source();
    const reads = new SegmentReads(inputs, 1 << 20);
    const done = reads.ahead(task(step));
    expect(inputs.reads).toBe(1);
    expect(await reads.segment(task(step), step)).toEqual(bytes);
    expect(inputs.reads).toBe(1);
    expect(await reads.segment(task(step), step)).toEqual(bytes); // taken: a second fold reads again
    expect(inputs.reads).toBe(2);
    done();
  });

  it('reads again when the read ahead failed, and lets go of bytes no fold took once the step ends', async () => {
    const inputs = source(1);
    const reads = new SegmentReads(inputs, 1 << 20);
    reads.ahead(task(step));
    expect(await reads.segment(task(step), step)).toEqual(bytes);
    expect(inputs.reads).toBe(2);

    const done = reads.ahead(task(step));
    done(); // the step ended without folding it (parked for a later step)
    await reads.segment(task(step), step);
    expect(inputs.reads).toBe(4);
  });

  it('reads nothing ahead for the other steps, nor a segment outside the requester\'s prefix', async () => {
    const inputs = source();
    const reads = new SegmentReads(inputs, 1 << 20);
    reads.ahead(task({ phase: 'open' }));
    reads.ahead(task({ phase: 'end', segments: 4, frames: 16, digest: 'c'.repeat(64) }));
    expect(inputs.reads).toBe(0);
    const foreign = { ...step, object: { ...object, uri: 's3://runs/other/device/run-1/s3' } };
    reads.ahead(task(foreign));
    await expect(reads.segment(task(foreign), foreign)).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' });
    expect(inputs.reads).toBe(0);
  });
});

describe('segment buffers given back after their fold', () => {
  /** A source that reads into the memory given (as the embedded store's files do) and notes what it was given. */
  function intoSource(): InputSource & { given: (Uint8Array | undefined)[] } {
    const noting = {
      given: [] as (Uint8Array | undefined)[],
      fetch: (_input: unknown, options: FetchOptions) => {
        noting.given.push(options.into);
        const out = options.into?.byteLength === bytes.length ? Buffer.from(options.into.buffer, options.into.byteOffset, bytes.length) : Buffer.alloc(bytes.length);
        out.set(bytes);
        return Promise.resolve(out);
      },
      stream: () => {
        throw new Error('segments are read whole');
      },
    };
    return noting;
  }

  it('reads a later segment of the same size into a spare buffer, once, and never a header', async () => {
    const inputs = intoSource();
    const reads = new SegmentReads(inputs, 1 << 20);
    const spare = new ArrayBuffer(bytes.length);
    reads.spare(spare);
    reads.spare(new ArrayBuffer(bytes.length + 1)); // another size: kept, but not for this segment
    await reads.read(task(step), header).catch(() => undefined);
    expect(inputs.given).toEqual([undefined]);
    const first = await reads.segment(task(step), step);
    expect(first.buffer).toBe(spare);
    expect(first).toEqual(bytes);
    const second = await reads.segment(task(step), step);
    expect(second.buffer).not.toBe(spare); // taken by the first read: the next one gets fresh memory
    expect(inputs.given.slice(1).map((m) => m?.byteLength)).toEqual([bytes.length, undefined]);
  });

  it('keeps at most three spares, none empty or over a segment\'s limit', async () => {
    const inputs = intoSource();
    const reads = new SegmentReads(inputs, 1 << 20);
    reads.spare(new ArrayBuffer(0));
    reads.spare(new ArrayBuffer(MAX_SEGMENT_BYTES + 1));
    const kept = [1, 2, 3, 4].map(() => new ArrayBuffer(bytes.length));
    for (const b of kept) reads.spare(b);
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await reads.segment(task(step), step)).buffer);
    // The oldest went when the fourth came; the others are read into, then fresh memory.
    expect(got.slice(0, 3)).toEqual(expect.arrayContaining([kept[1], kept[2], kept[3]]));
    expect(got.slice(0, 3).every((b) => b !== kept[0])).toBe(true);
    expect(kept.includes(got[3] as ArrayBuffer)).toBe(false);
  });

  it('lets its spares go once none was used for the idle time', async () => {
    const inputs = intoSource();
    const reads = new SegmentReads(inputs, 1 << 20, 50);
    const spare = new ArrayBuffer(bytes.length);
    reads.spare(spare);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const read = await reads.segment(task(step), step);
    expect(read.buffer).not.toBe(spare); // fresh memory: the idle spare was let go
    expect(inputs.given).toEqual([undefined]);
  });
});

describe('segments stored compressed', () => {
  const frames = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) % 251);
  const stored = brotliCompressSync(frames);
  const compressed: SegmentRef = { uri: `${PREFIX}/s3`, size: stored.length, sha256: createHash('sha256').update(stored).digest('hex'), contentType: SEGMENT_CONTENT_TYPE, encoding: 'br' };
  const compressedStep = { ...step, object: compressed };
  const storedSource = (): InputSource => ({
    fetch: () => Promise.resolve(Buffer.from(stored)),
    stream: () => {
      throw new Error('segments are read whole');
    },
  });

  it('expands a segment into the spare buffer its run gave back, once the run\'s frame size is known', async () => {
    const reads = new SegmentReads(storedSource(), 1 << 20);
    const first = await reads.segment(task(compressedStep), compressedStep);
    expect(Buffer.from(first).equals(Buffer.from(frames))).toBe(true);
    reads.spare(first.buffer as ArrayBuffer); // the fold gave it back
    const second = await reads.segment(task(compressedStep), compressedStep);
    expect(second.buffer).toBe(first.buffer); // 4 frames of 1024 bytes again: into the same memory
    expect(Buffer.from(second).equals(Buffer.from(frames))).toBe(true);
  });

  it('a segment that expands to more than its spare gets fresh memory with every byte', async () => {
    const reads = new SegmentReads(storedSource(), 1 << 20);
    await reads.segment(task(compressedStep), compressedStep); // 1024 bytes a frame
    const small = new ArrayBuffer(2048);
    reads.spare(small);
    const twoFrames = { ...compressedStep, frameCount: 2 }; // the same object announced as 2 frames: 4096 bytes in 2048
    const read = await reads.segment(task(twoFrames), twoFrames);
    expect(read.buffer).not.toBe(small);
    expect(Buffer.from(read).equals(Buffer.from(frames))).toBe(true);
  });

  it('refuses a compressed segment that is not Brotli, or expands past a segment\'s limit (SEGMENT_MISMATCH)', async () => {
    const bomb = brotliCompressSync(Buffer.alloc(MAX_SEGMENT_BYTES + 1));
    for (const bytes of [Buffer.from('not brotli at all, not even close'), bomb]) {
      const object: SegmentRef = { ...compressed, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
      const reads = new SegmentReads({ fetch: () => Promise.resolve(Buffer.from(bytes)), stream: () => { throw new Error('whole'); } }, MAX_SEGMENT_BYTES);
      await expect(reads.segment(task({ ...step, object }), { ...step, object })).rejects.toMatchObject({ code: 'SEGMENT_MISMATCH' });
    }
  });
});
