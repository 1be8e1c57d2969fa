/**
 * The instances a run assembled from single frames was made of, kept in the run's header in
 * a private block of group 0009 (creator `ARTERIA SERIES`), one item per frame in frame
 * order: so that a result can refer the hospital back to every image of the run, not only to
 * the first. Private: de-identification removes it before anything leaves the site (it reads
 * the list first, into the original identity).
 */

export const SERIES_INSTANCES_CREATOR = 'ARTERIA SERIES';

export interface InstanceReference {
  sopClassUid: string;
  sopInstanceUid: string;
}

/** A data set as dcmjs denaturalizes it: tags as 8 upper-case hex digits. */
type Elements = Record<string, { vr: string; Value?: unknown[] } | undefined>;

const GROUP = '0009';
const REFERENCED_SOP_CLASS = '00081150';
const REFERENCED_SOP_INSTANCE = '00081155';
const hex = (n: number): string => n.toString(16).toUpperCase().padStart(2, '0');
const creatorTag = (block: number): string => `${GROUP}00${hex(block)}`;
const listTag = (block: number): string => `${GROUP}${hex(block)}10`;

function ourBlock(ds: Elements): number | undefined {
  for (let block = 0x10; block <= 0xff; block += 1) {
    const value = ds[creatorTag(block)]?.Value?.[0];
    if (typeof value === 'string' && value.trim() === SERIES_INSTANCES_CREATOR) return block;
  }
  return undefined;
}

/**
 * Writes the list into `ds` (in place), in the block already named ours or the first free
 * one (an instance's own private elements, a vendor's in group 0009, stay as they are).
 * Returns false, writing nothing, when group 0009 has no free block.
 */
export function putSeriesInstances(ds: Elements, instances: readonly InstanceReference[]): boolean {
  let block = ourBlock(ds);
  for (let b = 0x10; block === undefined && b <= 0xff; b += 1) {
    if (ds[creatorTag(b)] === undefined && !Object.keys(ds).some((tag) => tag.startsWith(`${GROUP}${hex(b)}`))) block = b;
  }
  if (block === undefined) return false;
  ds[creatorTag(block)] = { vr: 'LO', Value: [SERIES_INSTANCES_CREATOR] };
  ds[listTag(block)] = {
    vr: 'SQ',
    Value: instances.map((i) => ({ [REFERENCED_SOP_CLASS]: { vr: 'UI', Value: [i.sopClassUid] }, [REFERENCED_SOP_INSTANCE]: { vr: 'UI', Value: [i.sopInstanceUid] } })),
  };
  return true;
}

/** The list a run assembled by Arteria carries, in frame order; undefined for any other run (or a list that is not well formed). */
export function seriesInstancesIn(ds: Elements): InstanceReference[] | undefined {
  const block = ourBlock(ds);
  if (block === undefined) return undefined;
  const items = ds[listTag(block)]?.Value;
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const list: InstanceReference[] = [];
  for (const item of items as Elements[]) {
    const sopClassUid = item[REFERENCED_SOP_CLASS]?.Value?.[0];
    const sopInstanceUid = item[REFERENCED_SOP_INSTANCE]?.Value?.[0];
    if (typeof sopClassUid !== 'string' || typeof sopInstanceUid !== 'string' || sopInstanceUid === '') return undefined;
    list.push({ sopClassUid: sopClassUid.replace(/\0+$/, ''), sopInstanceUid: sopInstanceUid.replace(/\0+$/, '') });
  }
  return list;
}
