import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { DeidentificationKey, DeidentificationProfile, deidentify, deidentifyFile } from '@arteria/gateway';
import { deflateBomb, nativeRun, nestedSequences, phiRun } from '@arteria/testing';

const key = new DeidentificationKey(Buffer.alloc(32, 7));
const profile = DeidentificationProfile.parse({});

/** De-identification is the gateway's only full parse of a run: hostile files are refused by type. */
describe('gateway de-identification under hostile input', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arteria-hostile-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('refuses a deflate bomb with INPUT_TOO_LARGE, from bytes and from a file, leaving no spool file', async () => {
    const bomb = await deflateBomb(2 * 1024 ** 3);
    expect(() => deidentify(bomb, profile, key)).toThrow(expect.objectContaining({ code: 'INPUT_TOO_LARGE' }) as Error);
    await writeFile(join(dir, 'bomb.dcm'), bomb);
    await expect(deidentifyFile(join(dir, 'bomb.dcm'), join(dir, 'out.dcm'), profile, key)).rejects.toMatchObject({ code: 'INPUT_TOO_LARGE' });
    expect(await readdir(dir)).toEqual(['bomb.dcm']);
  });

  it('refuses deep nesting and a truncated header with INVALID_DICOM', () => {
    for (const depth of [1_000, 50_000]) expect(() => deidentify(nestedSequences(depth), profile, key)).toThrow(expect.objectContaining({ code: 'INVALID_DICOM' }) as Error);
    const truncated = nativeRun({ rows: 64, columns: 64, frames: 4 }).subarray(0, 300);
    expect(() => deidentify(truncated, profile, key)).toThrow(expect.objectContaining({ code: 'INVALID_DICOM' }) as Error);
  });

  it('fuzz: a PHI-laden run, mutated, is de-identified or refused with a typed error', () => {
    const run = phiRun({ seed: 3, studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.7', seriesInstanceUid: '1.2.826.0.1.3680043.8.1055.1.7.2', sopInstanceUid: '1.2.826.0.1.3680043.8.1055.1.7.2.1' });
    const change = fc.record({ at: fc.nat({ max: run.length - 1 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }), cut: fc.boolean() });
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 3 }), (changes) => {
        let bytes = Buffer.from(run);
        for (const { at, bytes: b, cut } of changes) {
          if (cut) bytes = bytes.subarray(0, Math.min(at, bytes.length));
          else bytes.set(b.subarray(0, Math.max(0, bytes.length - at)), Math.min(at, bytes.length));
        }
        try {
          deidentify(bytes, profile, key);
        } catch (err) {
          if (!(err instanceof ArteriaError)) throw new Error(`untyped failure: ${String(err)}`, { cause: err });
        }
      }),
      { numRuns: 250, seed: 20261204 },
    );
  });
});
