import { describe, expect, it } from 'vitest';
import { putSeriesInstances, seriesInstancesIn, SERIES_INSTANCES_CREATOR } from '@arteria/dicom';

const XA = '1.2.840.10008.5.1.4.1.1.12.1';
const list = [1, 2, 3].map((n) => ({ sopClassUid: XA, sopInstanceUid: `1.2.3.${n}` }));
type Elements = Parameters<typeof putSeriesInstances>[0];

describe('the instances a run assembled from single frames was made of', () => {
  it('go into the first free private block of group 0009, a vendor\'s block there kept as it is', () => {
    const ds: Elements = { '00090010': { vr: 'LO', Value: ['GEMS_IDEN_01'] }, '00091001': { vr: 'LO', Value: ['vendor'] }, '00091101': { vr: 'LO', Value: ['orphan element of block 11'] } };
    expect(putSeriesInstances(ds, list)).toBe(true);
    expect(ds['00090010']?.Value).toEqual(['GEMS_IDEN_01']);
    expect(ds['00091001']?.Value).toEqual(['vendor']);
    expect(ds['00090012']?.Value).toEqual([SERIES_INSTANCES_CREATOR]);
    expect(ds['00091210']?.vr).toBe('SQ');
    expect(seriesInstancesIn(ds)).toEqual(list);
  });

  it('are written again into the block that is already ours', () => {
    const ds: Elements = {};
    putSeriesInstances(ds, list);
    putSeriesInstances(ds, list.slice(0, 1));
    expect(Object.keys(ds).sort()).toEqual(['00090010', '00091010']);
    expect(seriesInstancesIn(ds)).toEqual(list.slice(0, 1));
  });

  it('are absent from any other run, and a malformed list is no list', () => {
    expect(seriesInstancesIn({})).toBeUndefined();
    expect(seriesInstancesIn({ '00090010': { vr: 'LO', Value: ['SOMEONE ELSE'] }, '00091010': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: ['1.2'] } }] } })).toBeUndefined();
    expect(seriesInstancesIn({ '00090010': { vr: 'LO', Value: [SERIES_INSTANCES_CREATOR] }, '00091010': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: [XA] } }] } })).toBeUndefined();
    expect(seriesInstancesIn({ '00090010': { vr: 'LO', Value: [SERIES_INSTANCES_CREATOR] }, '00091010': { vr: 'SQ', Value: [] } })).toBeUndefined();
  });

  it('are not written where group 0009 has no free block', () => {
    const ds: Elements = {};
    for (let b = 0x10; b <= 0xff; b += 1) ds[`000900${b.toString(16).toUpperCase().padStart(2, '0')}`] = { vr: 'LO', Value: [`VENDOR ${b}`] };
    expect(putSeriesInstances(ds, list)).toBe(false);
    expect(seriesInstancesIn(ds)).toBeUndefined();
  });
});
