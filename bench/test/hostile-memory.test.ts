import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { deflateBomb, nativeRun, nestedSequences } from '@arteria/testing';
import type { HostileChildArgs } from '../src/hostile-child.js';

const exec = promisify(execFile);
const CHILD = fileURLToPath(new URL('../dist/hostile-child.js', import.meta.url));
const ECHO = fileURLToPath(new URL('../../packages/testing/fixtures/algorithms/echo', import.meta.url));
/** JavaScript heap of each child: far below what any of these files would cost unbounded. */
const HEAP_MB = 128;
/** What one hostile file may cost a path above the same path reading a small valid run. */
const BOUND_MB = 64;

interface Outcome {
  name: string;
  code: string;
  message: string;
  peakRssMb: number;
}

async function child(args: HostileChildArgs): Promise<Outcome[]> {
  const { stdout } = await exec(process.execPath, [`--max-old-space-size=${HEAP_MB}`, CHILD, JSON.stringify(args)], { timeout: 240_000 });
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as Outcome);
}

/** [file, gateway's answer, worker's answer]. */
const CASES: [string, string, string][] = [
  ['valid', 'ok', 'ok'],
  ['deflateBomb', 'INPUT_TOO_LARGE', 'INPUT_TOO_LARGE'],
  // The gateway reads only the header of a file handed to it and passes its pixels on
  // unchanged, in bounded memory; the worker refuses these.
  ['hugeDeclaredLength', 'ok', 'INVALID_DICOM'],
  ['absurdGeometry', 'ok', 'INVALID_DICOM'],
  ['truncatedPixels', 'ok', 'INVALID_DICOM'],
  ['nestedSequences', 'INVALID_DICOM', 'INVALID_DICOM'],
];

/**
 * Hostile files go through the gateway's path for a file (header, then de-identification
 * into its spool) and the worker's (streamed into the algorithm's isolated thread), one
 * process per path under a heap cap, a valid run first: the process's peak RSS stays within
 * BOUND_MB of its peak after the valid run, and each file gets its typed answer.
 */
describe('hostile input under a memory cap', () => {
  let dir: string;
  const files: string[] = [];
  /** The gateway process's peak after the valid run: the broker child loads the same modules. */
  let gatewayBaseline = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arteria-hostile-memory-'));
    const made: Record<string, Buffer> = {
      valid: synthesizeXaRun({ seed: 1, rows: 64, columns: 64, frames: 8, bitsStored: 8 }).bytes,
      deflateBomb: await deflateBomb(3 * 1024 ** 3),
      hugeDeclaredLength: nativeRun({ rows: 512, columns: 512, frames: 16 }, 0xfffffff0, 4096),
      absurdGeometry: nativeRun({ rows: 65535, columns: 65535, frames: 2 ** 31 - 1 }, 64, 64),
      truncatedPixels: nativeRun({ rows: 512, columns: 512, frames: 64 }, 512 * 512 * 64, 1 << 20),
      nestedSequences: nestedSequences(50_000),
    };
    for (const [name] of CASES) {
      const file = join(dir, `${name}.dcm`);
      await writeFile(file, made[name] ?? Buffer.alloc(0));
      files.push(file);
    }
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const check = (outcomes: Outcome[], column: 1 | 2): void => {
    // The figures docs/security.md quotes.
    process.stdout.write(`peak RSS (MB): ${outcomes.map((o) => `${o.name} ${o.code} ${Math.round(o.peakRssMb)}`).join(', ')}\n`);
    expect(outcomes.map((o) => [o.name, o.code])).toEqual(CASES.map((c) => [`${c[0]}.dcm`, c[column]]));
    const baseline = outcomes[0]?.peakRssMb ?? 0;
    expect(Math.max(...outcomes.map((o) => o.peakRssMb))).toBeLessThan(baseline + BOUND_MB);
  };

  it('the gateway: header, then de-identification into its spool; a refused file leaves no spool file', async () => {
    const spool = join(dir, 'gateway');
    const outcomes = await child({ path: 'gateway', files, dir: spool });
    check(outcomes, 1);
    gatewayBaseline = outcomes[0]?.peakRssMb ?? 0;
    expect((await readdir(join(spool, 'spool'))).sort()).toEqual(['entry-0.dcm', 'entry-2.dcm', 'entry-3.dcm', 'entry-4.dcm']);
  }, 240_000);

  it('the worker: the run streamed into the algorithm thread and decoded there', async () => {
    check(await child({ path: 'platform', files, algorithmDir: ECHO }), 2);
  }, 240_000);

  it('the embedded broker hangs up on a PUBLISH announcing 100 MB', async () => {
    const [outcome] = await child({ path: 'broker', announcedBytes: 100 * 1024 * 1024 });
    process.stdout.write(`broker peak RSS (MB): ${Math.round(outcome?.peakRssMb ?? 0)}\n`);
    expect(outcome?.code, outcome?.message).toBe('PAYLOAD_TOO_LARGE');
    // Bounded by what it reads before hanging up (a few MB in flight), not by what was announced.
    expect(gatewayBaseline).toBeGreaterThan(0);
    expect(outcome?.peakRssMb).toBeLessThan(gatewayBaseline + BOUND_MB);
  }, 60_000);
});
