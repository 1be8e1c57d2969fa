import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDataSet } from '@arteria/dicom';
import { writeSeriesRun } from '@arteria/gateway';
import { exec, writeSingleFrameSeries } from '@arteria/testing';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arteria-series-run-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** Burned In Annotation of the run made of three frames that say `said` (undefined: absent). */
async function assembled(name: string, said: (string | undefined)[]): Promise<string | undefined> {
  const folder = join(dir, name);
  const files = await writeSingleFrameSeries(await mkdtemp(`${folder}-`), { studyInstanceUid: '1.2.3', seriesInstanceUid: `1.2.3.${said.length}`, count: said.length, rows: 4, columns: 4, frame: () => new Uint8Array(16) });
  for (const [i, value] of said.entries()) if (value !== undefined) await exec('dcmodify', ['-nb', '-i', `(0028,0301)=${value}`, files[i]!]);
  const run = await writeSeriesRun(files, join(dir, `${name}-runs`));
  return parseDataSet(await readFile(run)).string('x00280301')?.trim();
}

describe('a series of single frames made into one run', () => {
  it('says NO to burned-in annotation only when every frame does, YES when any does, else nothing', async () => {
    expect(await assembled('all-no', ['NO', 'NO', 'NO'])).toBe('NO');
    // The first frame alone used to decide: a later frame that does not say so, or says YES, must count.
    expect(await assembled('one-unsaid', ['NO', undefined, 'NO'])).toBeUndefined();
    expect(await assembled('one-yes', ['NO', 'NO', 'YES'])).toBe('YES');
    expect(await assembled('none-said', [undefined, undefined, undefined])).toBeUndefined();
  });
});
