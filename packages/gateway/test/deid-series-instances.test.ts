import dcmjs from 'dcmjs';
import { describe, expect, it } from 'vitest';
import { putSeriesInstances } from '@arteria/dicom';
import { DeidentificationKey, DeidentificationProfile, deidentify } from '@arteria/gateway';
import { phiRun } from '@arteria/testing';

const key = new DeidentificationKey(Buffer.alloc(32, 9));
const profile = DeidentificationProfile.parse({});
const SERIES = '1.2.826.0.1.3680043.8.1055.1.20240315.31.2';
const XA = '1.2.840.10008.5.1.4.1.1.12.1';

/** A four-frame run (phiRun) whose header lists `uids` as the instances it was made of, as an assembled series' header does. */
function listing(uids: string[]): Buffer {
  const bytes = phiRun({ seed: 5, studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.20240315.31', seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.1` });
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  putSeriesInstances(dict.dict, uids.map((sopInstanceUid) => ({ sopClassUid: XA, sopInstanceUid })));
  return Buffer.from(dict.write());
}

describe('the instances an assembled run lists, through de-identification', () => {
  it('are read into the original identity, and removed with the private elements before the run leaves', () => {
    const uids = [1, 2, 3, 4].map((n) => `${SERIES}.${n}`);
    const out = deidentify(listing(uids), profile, key);
    expect(out.original.instances?.map((i) => i.sopInstanceUid)).toEqual(uids);
    for (const uid of uids) expect(out.bytes.includes(uid), `${uid} left the site`).toBe(false);
    expect(out.bytes.includes('ARTERIA SERIES')).toBe(false);
  });

  it('are ignored unless listed as the gateway lists them: one a frame, the first the run itself', () => {
    expect(deidentify(listing([`${SERIES}.1`, `${SERIES}.2`]), profile, key).original.instances).toBeUndefined();
    expect(deidentify(listing(['1.2.3', `${SERIES}.2`, `${SERIES}.3`, `${SERIES}.4`]), profile, key).original.instances).toBeUndefined();
  });
});
