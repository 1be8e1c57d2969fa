import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeidentificationKey, ReidentificationStore } from '@arteria/gateway';

const dir = await mkdtemp(join(tmpdir(), 'arteria-reid-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const ORIGINAL = {
  studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.20240315.1',
  seriesInstanceUid: '1.2.826.0.1.3680043.8.1055.1.20240315.1.2',
  sopInstanceUid: '1.2.826.0.1.3680043.8.1055.1.20240315.1.2.1',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.12.1',
  patientName: 'DOE^JANE',
  patientId: 'MRN-0042',
  patientBirthDate: '19510203',
  patientSex: 'F',
  accessionNumber: 'ACC-777',
  studyId: 'S1',
  studyDate: '20240315',
  studyTime: '101500',
};
const DEID = { studyInstanceUid: '2.25.1', seriesInstanceUid: '2.25.2', sopInstanceUid: '2.25.3' };

/** The on-site map back to patients: readable only by the gateway's user, and sealed with the site key. */
describe('re-identification store', () => {
  it('is 0600, holds no identifier in the clear, and opens only with the site key', async () => {
    const key = new DeidentificationKey(Buffer.alloc(32, 7));
    const path = join(dir, 'outbox.reid');
    const store = ReidentificationStore.open(path, key.storeKey());
    store.put(DEID, ORIGINAL, 1_000);
    expect(store.get('2.25.3')?.original).toEqual(ORIGINAL);
    // Every file SQLite keeps for it (database, write-ahead log, shared memory).
    const files = (await readdir(dir)).filter((f) => f.startsWith('outbox.reid'));
    expect(files).toContain('outbox.reid');
    for (const f of files) {
      expect(((await stat(join(dir, f))).mode & 0o777).toString(8), f).toBe('600');
      const bytes = await readFile(join(dir, f));
      for (const phi of ['DOE^JANE', 'MRN-0042', 'ACC-777', '19510203', ORIGINAL.studyInstanceUid]) expect(bytes.includes(phi), `${phi} in ${f}`).toBe(false);
    }
    store.close();

    const wrong = ReidentificationStore.open(path, new DeidentificationKey(Buffer.alloc(32, 8)).storeKey());
    expect(() => wrong.get('2.25.3')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
    wrong.close();
  });
});
