import dcmjs, { type DenaturalizedDataset } from 'dcmjs';
import { synthesizeXaRun } from '@arteria/dicom';

/** Identifying strings put into test runs; none may appear in a de-identified object. */
export const PHI = ['Doe^Jane', 'MRN-0042', 'ACC-7781', 'St Elsewhere Hospital', 'Dr^Referrer', 'Op^Erator', 'Private Jane', 'Nested^Nurse', 'Left main study', '19510704', 'dose note by Dr Who', 'frame note ward 7', 'chest pain since Monday', 'visit note room 12', 'request note bed 4'];

export interface PhiRunOptions {
  seed: number;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  /** A SOP Instance UID the run references in a nested sequence (another run of the series). */
  references?: string;
  burnedIn?: boolean;
}

const el = (vr: string, ...values: unknown[]): { vr: string; Value: unknown[] } => ({ vr, Value: values });
const pn = (name: string): { vr: string; Value: unknown[] } => el('PN', { Alphabetic: name });

/** A small multi-frame XA run full of PHI: top level, nested sequences, private tags. */
export function phiRun(options: PhiRunOptions): Buffer {
  const synthetic = synthesizeXaRun({ seed: options.seed, rows: 16, columns: 16, frames: 4, bitsStored: 8 });
  const bytes = synthetic.bytes;
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  const ds: DenaturalizedDataset = dict.dict;
  dict.meta['00020003'] = el('UI', options.sopInstanceUid);
  Object.assign(ds, {
    '00080018': el('UI', options.sopInstanceUid),
    '0020000D': el('UI', options.studyInstanceUid),
    '0020000E': el('UI', options.seriesInstanceUid),
    '00100010': pn('Doe^Jane'),
    '00100020': el('LO', 'MRN-0042'),
    '00100030': el('DA', '19510704'),
    '00100040': el('CS', 'F'),
    '00101010': el('AS', '073Y'),
    '00080020': el('DA', '20240315'),
    '00080050': el('SH', 'ACC-7781'),
    '00080080': el('LO', 'St Elsewhere Hospital'),
    '00080090': pn('Dr^Referrer'),
    '00081070': pn('Op^Erator'),
    '00081030': el('LO', 'Left main study'),
    '00081010': el('SH', 'CATHLAB2'),
    '00181000': el('LO', 'SN-99812'),
    // Free text staff type in: comments and reasons (Table E.1-1 removes each).
    '00400310': el('ST', 'dose note by Dr Who'),
    '00321030': el('LO', 'chest pain since Monday'),
    '00384000': el('LT', 'visit note room 12'),
    '00402400': el('LT', 'request note bed 4'),
    '52009230': el('SQ', { '00209158': el('LT', 'frame note ward 7') }),
    // Text the table does not name: unlisted free text, and technical text that is kept.
    '00187062': el('LT', 'exposure note for Jane'),
    '00180010': el('LO', 'Iohexol'),
    '00281055': el('LO', 'NORMAL'),
    '00082218': el('SQ', { '00080100': el('SH', 'T-45010'), '00080102': el('SH', 'SRT'), '00080104': el('LO', 'Coronary artery') }),
    '00200052': el('UI', `${options.studyInstanceUid}.9`),
    // Nested: a reference to another instance, and a person two sequences deep.
    '00082112': el('SQ', {
      '00081150': el('UI', '1.2.840.10008.5.1.4.1.1.12.1'),
      '00081155': el('UI', options.references ?? options.sopInstanceUid),
      '0040A730': el('SQ', { '0040A123': pn('Nested^Nurse'), '0040A160': el('UT', 'seen by the nurse') }),
    }),
    '00400275': el('SQ', { '00401001': el('SH', 'RP-1'), '00321060': el('LO', 'Left main study') }),
    // Private: one vendor block removed, one allow-listed.
    '00090010': el('LO', 'ACME PHI'),
    '00091001': el('LO', 'Private Jane'),
    '00190010': el('LO', 'ARTERIA SAFE'),
    '00191005': el('LO', 'kV curve 3'),
    '00191006': el('LO', 'Private Jane'),
  });
  if (options.burnedIn) ds['00280301'] = el('CS', 'YES');
  return Buffer.from(dict.write());
}

export function readDataset(bytes: Uint8Array): { meta: DenaturalizedDataset; ds: DenaturalizedDataset } {
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  return { meta: dict.meta, ds: dict.dict };
}

/** The first value of an element; an empty value reads as undefined. */
export function value(ds: DenaturalizedDataset | undefined, tag: string): unknown {
  const v = ds?.[tag]?.Value?.[0];
  return v === '' ? undefined : v;
}

export function items(ds: DenaturalizedDataset | undefined, tag: string): DenaturalizedDataset[] {
  return (ds?.[tag]?.Value ?? []) as DenaturalizedDataset[];
}
