import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InputRef } from '@arteria/protocol';
import type { FetchOptions, InputSource } from '@arteria/ports';

/** An input source under test, over a store the suite can write into. */
export interface InputSourceUnderTest {
  source: InputSource;
  /** The bucket `put` writes into. */
  bucket: string;
  /** Stores `bytes` at `key` the way devices do (a large object in parts, where the store has them). */
  put(key: string, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

const LIMIT = { maxBytes: 64 << 20 };

function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function streamed(source: InputSource, input: InputRef, options: FetchOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source.stream(input, options)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The contract every `InputSource` keeps (docs/architecture.md, "Ports and adapters"):
 * exactly the declared bytes, whole or streamed; the same typed errors for a missing
 * object, a wrong size or hash and an input over the limit; nothing outside the store;
 * work stops when aborted.
 */
export function inputSourceConformance(name: string, setup: () => Promise<InputSourceUnderTest>): void {
  describe(`InputSource conformance: ${name}`, () => {
    let it_: InputSourceUnderTest;
    const small = bytesOf(70_001, 1);
    // Below 64 KiB, where an adapter may read in one step (the embedded store's files do).
    const tiny = bytesOf(9_001, 3);
    const large = bytesOf(12 << 20, 2);
    const ref = (key: string, bytes: Uint8Array, bucket?: string): InputRef => ({ uri: `s3://${bucket ?? it_.bucket}/${key}`, size: bytes.length, sha256: sha256(bytes), contentType: 'application/dicom' });

    beforeAll(async () => {
      it_ = await setup();
      await it_.put('acme/cath-lab-1/run-1.dcm', small);
      await it_.put('acme/cath-lab-1/run-3.dcm', tiny);
      await it_.put('acme/cath-lab-1/deep/run 2 (big).dcm', large);
    }, 120_000);
    afterAll(async () => {
      await it_.close();
    });

    it('returns exactly the stored bytes, small and large, whole or streamed', async () => {
      const { source } = it_;
      expect(Buffer.compare(await source.fetch(ref('acme/cath-lab-1/run-1.dcm', small), LIMIT), Buffer.from(small))).toBe(0);
      expect(Buffer.compare(await source.fetch(ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), LIMIT), Buffer.from(large))).toBe(0);
      expect(Buffer.compare(await streamed(source, ref('acme/cath-lab-1/run-1.dcm', small), LIMIT), Buffer.from(small))).toBe(0);
      expect(Buffer.compare(await streamed(source, ref('acme/cath-lab-1/run-3.dcm', tiny), LIMIT), Buffer.from(tiny))).toBe(0);
      expect(Buffer.compare(await streamed(source, ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), LIMIT), Buffer.from(large))).toBe(0);
    });

    it('reads into memory the caller gives when it is the input\'s size, or ignores it: the same bytes and checks', async () => {
      const { source } = it_;
      const key = 'acme/cath-lab-1/run-1.dcm';
      const into = new Uint8Array(small.length).fill(0xee);
      const got = await source.fetch(ref(key, small), { ...LIMIT, into });
      expect(Buffer.compare(got, Buffer.from(small))).toBe(0);
      if (got.buffer === into.buffer) expect(got.byteLength).toBe(into.byteLength); // read into it: a view of all of it
      // Memory of another size is not used; a wrong digest fails as without it.
      const other = await source.fetch(ref(key, small), { ...LIMIT, into: new Uint8Array(small.length + 1) });
      expect(Buffer.compare(other, Buffer.from(small))).toBe(0);
      await expect(source.fetch({ ...ref(key, small), sha256: '0'.repeat(64) }, { ...LIMIT, into: new Uint8Array(small.length) })).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    });

    it('streams in chunks of bounded size, so memory does not grow with the input', async () => {
      let largest = 0;
      for await (const chunk of it_.source.stream(ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), LIMIT)) largest = Math.max(largest, chunk.length);
      expect(largest).toBeLessThanOrEqual(8 << 20);
    });

    it('fails with the same codes for a missing key, a missing bucket, a wrong size, a wrong hash and a too-large input', async () => {
      const key = 'acme/cath-lab-1/run-1.dcm';
      const cases: [InputRef, FetchOptions, string][] = [
        [ref('acme/cath-lab-1/none.dcm', small), LIMIT, 'INPUT_NOT_FOUND'],
        [ref(key, small, 'no-such-bucket'), LIMIT, 'INPUT_NOT_FOUND'],
        [{ ...ref(key, small), size: small.length - 1 }, LIMIT, 'CHECKSUM_MISMATCH'],
        [{ ...ref(key, small), size: small.length + 1 }, LIMIT, 'CHECKSUM_MISMATCH'],
        [{ ...ref(key, small), sha256: sha256(large) }, LIMIT, 'CHECKSUM_MISMATCH'],
        [ref(key, small), { maxBytes: 1000 }, 'INPUT_TOO_LARGE'],
        [ref('acme/cath-lab-1/none.dcm', tiny), LIMIT, 'INPUT_NOT_FOUND'],
        [{ ...ref('acme/cath-lab-1/run-3.dcm', tiny), size: tiny.length - 1 }, LIMIT, 'CHECKSUM_MISMATCH'],
        [{ ...ref('acme/cath-lab-1/run-3.dcm', tiny), size: tiny.length + 1 }, LIMIT, 'CHECKSUM_MISMATCH'],
        [{ ...ref('acme/cath-lab-1/run-3.dcm', tiny), sha256: sha256(small) }, LIMIT, 'CHECKSUM_MISMATCH'],
      ];
      for (const [input, limit, code] of cases) {
        await expect(it_.source.fetch(input, limit), `${input.uri} ${input.size}`).rejects.toMatchObject({ code });
        await expect(streamed(it_.source, input, limit), `streamed: ${input.uri} ${input.size}`).rejects.toMatchObject({ code });
      }
    });

    it('never reads outside the store: a key that climbs out of its bucket does not exist', async () => {
      for (const key of ['../arteria-runs/acme/cath-lab-1/run-1.dcm', 'acme/../../../etc/passwd', '../../../../../../etc/hostname']) {
        await expect(it_.source.fetch(ref(key, small), LIMIT)).rejects.toMatchObject({ code: 'INPUT_NOT_FOUND' });
      }
      await expect(it_.source.fetch(ref('x', small, '..'), LIMIT)).rejects.toMatchObject({ code: 'INPUT_NOT_FOUND' });
      await expect(streamed(it_.source, ref('../arteria-runs/acme/cath-lab-1/run-3.dcm', tiny), LIMIT)).rejects.toMatchObject({ code: 'INPUT_NOT_FOUND' });
    });

    it('stops when the work is aborted', async () => {
      const abort = new AbortController();
      abort.abort(new Error('lease lost'));
      await expect(it_.source.fetch(ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), { ...LIMIT, signal: abort.signal })).rejects.toThrow();
      await expect(streamed(it_.source, ref('acme/cath-lab-1/run-3.dcm', tiny), { ...LIMIT, signal: abort.signal })).rejects.toThrow();
    });
  });
}
