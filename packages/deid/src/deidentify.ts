import dcmjs, { type DenaturalizedDataset, type DicomElement } from 'dcmjs';
import { newerVrElements, relabel, seriesInstancesIn, visitHeaderElements, type ElementHeader, type InstanceReference } from '@arteria/dicom';
import { ArteriaError } from '@arteria/protocol';
import { KEPT_TEXT, RULES, STANDARD_UID_ROOT, repeatingGroupAction, type Action, type Rule } from './actions.js';
import { shiftDa, shiftDt } from './dates.js';
import { assertReadableForDeidentification } from './guard.js';
import type { DeidentificationKey } from './key.js';
import { maskRegions } from './mask.js';
import { burnedInRefusal, mayHaveBurnedInAnnotation } from './burned-in.js';
import { locatePixelData } from './pixel-data.js';
import type { DeidentificationProfile } from './profile.js';
import { TEXT_VRS, knownIdentifierScrub, scrubDataset } from './scrub.js';

/** What re-identifies a result on-site: the original study as the hospital knows it. Never leaves the site. */
export interface OriginalIdentity {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  patientName: string;
  patientId: string;
  patientBirthDate: string;
  patientSex: string;
  accessionNumber: string;
  studyId: string;
  studyDate: string;
  studyTime: string;
  /** A run the gateway assembled from single frames: every instance it was made of, in frame order (seriesInstancesIn). */
  instances?: InstanceReference[];
}

export interface DeidentifiedUids {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

export interface DeidentifiedRun {
  bytes: Buffer;
  original: OriginalIdentity;
  deidentified: DeidentifiedUids;
  /** Days dates were moved back (0 when dates were removed instead). */
  dateShiftDays: number;
  /** True when burned-in annotation was masked. */
  masked: boolean;
}

interface Context {
  profile: DeidentificationProfile;
  key: DeidentificationKey;
  shiftDays: number;
  /** `gggg|creator|ee` of private elements to keep, and `gggg|creator` of their creators. */
  allowed: Set<string>;
  /** Unlisted public text attributes the site keeps (`keepText`). */
  keepText: Set<string>;
}

/**
 * De-identifies a DICOM Part 10 object per PS3.15 Annex E (Basic Application Level
 * Confidentiality Profile and the profile's options), recursing into sequences; returns
 * the new bytes and what is needed to re-identify results on-site.
 */
export function deidentify(part10: Uint8Array, profile: DeidentificationProfile, key: DeidentificationKey): DeidentifiedRun {
  try {
    return deidentifyRun(part10, profile, key);
  } catch (err) {
    // dcmjs refuses values it cannot write (a CS longer than 16 bytes...) with plain Errors.
    if (err instanceof ArteriaError) throw err;
    throw new ArteriaError('INVALID_DICOM', `the DICOM object cannot be de-identified: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function deidentifyRun(part10: Uint8Array, profile: DeidentificationProfile, key: DeidentificationKey): DeidentifiedRun {
  // Compressed frames are never decoded or re-encapsulated: the header is rewritten and the
  // Pixel Data element (offset table and fragments) follows byte for byte.
  const located = locatePixelData(part10);
  if (located?.encapsulated !== true) return deidentifyObject(part10, profile, key);
  const run = deidentifyObject(part10.subarray(0, located.start), profile, key);
  return { ...run, bytes: Buffer.concat([run.bytes, part10.subarray(located.start)]) };
}

function deidentifyObject(part10: Uint8Array, profile: DeidentificationProfile, key: DeidentificationKey): DeidentifiedRun {
  assertReadableForDeidentification(part10);
  const newer = newerVrElements(part10);
  let dict: ReturnType<typeof dcmjs.data.DicomMessage.readFile>;
  try {
    dict = dcmjs.data.DicomMessage.readFile(toArrayBuffer(part10, newer));
  } catch (err) {
    throw new ArteriaError('INVALID_DICOM', `cannot parse the DICOM object for de-identification: ${(err as Error).message}`, { cause: err });
  }
  const ds = dict.dict;
  const original: OriginalIdentity = {
    studyInstanceUid: text(ds, '0020000D'),
    seriesInstanceUid: text(ds, '0020000E'),
    sopInstanceUid: text(ds, '00080018'),
    sopClassUid: text(ds, '00080016'),
    patientName: text(ds, '00100010'),
    patientId: text(ds, '00100020'),
    patientBirthDate: text(ds, '00100030'),
    patientSex: text(ds, '00100040'),
    accessionNumber: text(ds, '00080050'),
    studyId: text(ds, '00200010'),
    studyDate: text(ds, '00080020'),
    studyTime: text(ds, '00080030'),
  };
  if (original.sopInstanceUid === '') throw new ArteriaError('INVALID_DICOM', 'the object has no SOP Instance UID');
  // Taken only as the gateway writes it (one instance a frame, the first the run's own): a
  // block someone else made up does not decide what the report refers to.
  const instances = seriesInstancesIn(ds);
  if (instances !== undefined && instances.length === Number(text(ds, '00280008')) && instances[0]?.sopInstanceUid === original.sopInstanceUid) original.instances = instances;

  let masked = false;
  if (mayHaveBurnedInAnnotation(text(ds, '00280301'), original.sopClassUid)) {
    const refusal = burnedInRefusal(profile, { burnedInAnnotation: text(ds, '00280301'), sopClassUid: original.sopClassUid, transferSyntaxUid: text(dict.meta, '00020010') });
    if (refusal !== undefined) throw refusal;
    const { regions } = profile.burnedInAnnotation;
    maskRegions(ds, regions);
    ds['00280301'] = { vr: 'CS', Value: ['NO'] };
    masked = true;
  }

  const longitudinal = profile.retainLongitudinalTemporalInformationModifiedDates;
  const patientKey = original.patientId || original.patientName || original.studyInstanceUid;
  const context: Context = { profile, key, shiftDays: longitudinal ? key.dateShiftDays(patientKey) : 0, allowed: allowedPrivate(profile), keepText: new Set(profile.keepText.map((t) => t.toUpperCase())) };
  // The patient's identifiers are read before the table removes them, and masked in the text that survives it.
  const scrub = profile.scrubKnownIdentifiers ? knownIdentifierScrub(ds) : undefined;
  cleanMeta(dict.meta, context);
  cleanDataset(ds, context);
  if (scrub !== undefined) scrubDataset(ds, scrub);
  markDeidentified(ds, profile, masked);

  const bytes = Buffer.from(dict.write());
  restoreNewerVrs(bytes, newer);
  return {
    bytes,
    original,
    deidentified: { studyInstanceUid: text(ds, '0020000D'), seriesInstanceUid: text(ds, '0020000E'), sopInstanceUid: text(ds, '00080018') },
    dateShiftDays: context.shiftDays,
    masked,
  };
}

function cleanMeta(meta: DenaturalizedDataset, context: Context): void {
  for (const tag of Object.keys(meta)) {
    const rule = RULES.get(tag);
    if (rule !== undefined) applyAction(meta, tag, resolve(rule, context), context);
  }
}

function cleanDataset(ds: DenaturalizedDataset, context: Context): void {
  const creators = privateCreators(ds);
  for (const tag of Object.keys(ds)) {
    const element = ds[tag];
    if (element === undefined) continue;
    const group = parseInt(tag.slice(0, 4), 16);
    if (group % 2 === 1) {
      if (!keepPrivate(tag, creators, context.allowed)) delete ds[tag];
      continue;
    }
    if (tag.slice(4) === '0000') {
      delete ds[tag]; // group lengths are recomputed (or omitted) on write
      continue;
    }
    const rule = RULES.get(tag);
    if (rule !== undefined) {
      applyAction(ds, tag, resolve(rule, context), context);
      continue;
    }
    const repeating = repeatingGroupAction(tag);
    if (repeating !== undefined) {
      applyAction(ds, tag, repeating, context);
      continue;
    }
    applyByVr(ds, tag, element, context);
  }
}

/** Attributes the table does not name, by what they hold: the conservative reading of Annex E. */
function applyByVr(ds: DenaturalizedDataset, tag: string, element: DicomElement, context: Context): void {
  const longitudinal = context.shiftDays > 0;
  switch (element.vr) {
    case 'SQ':
      for (const item of element.Value ?? []) cleanDataset(item as DenaturalizedDataset, context);
      return;
    case 'UI':
      replaceUids(ds, tag, element, context);
      return;
    case 'PN':
      delete ds[tag];
      return;
    case 'DA':
    case 'DT':
      if (longitudinal) shiftDates(ds, tag, element, context.shiftDays);
      else delete ds[tag];
      return;
    case 'TM':
      if (!longitudinal) delete ds[tag];
      return;
    default:
      // Text (and UN outside the dictionary) the table does not name: see unlistedText.
      if ((TEXT_VRS.has(element.vr) || element.vr === 'UN') && context.profile.unlistedText === 'remove' && !KEPT_TEXT.has(tag) && !context.keepText.has(tag)) delete ds[tag];
  }
}

/** 'S' means: shift the date (DA, DT), keep the time (TM). */
function resolve(rule: Rule, context: Context): Action | 'S' {
  if (context.profile.retainDeviceIdentity && rule.dev !== undefined) return rule.dev;
  if (context.profile.retainPatientCharacteristics && rule.pat !== undefined) return rule.pat;
  if (rule.temporal && context.shiftDays > 0) return 'S';
  return rule.basic;
}

function applyAction(ds: DenaturalizedDataset, tag: string, action: Action | 'S', context: Context): void {
  const element = ds[tag];
  if (element === undefined) return;
  switch (action) {
    case 'X':
      delete ds[tag];
      return;
    case 'Z':
      ds[tag] = { vr: element.vr, Value: [] };
      return;
    case 'U':
      replaceUids(ds, tag, element, context);
      return;
    case 'S':
      if (element.vr === 'DA' || element.vr === 'DT') shiftDates(ds, tag, element, context.shiftDays);
      return;
    case 'K':
      if (element.vr === 'SQ') for (const item of element.Value ?? []) cleanDataset(item as DenaturalizedDataset, context);
  }
}

function replaceUids(ds: DenaturalizedDataset, tag: string, element: DicomElement, context: Context): void {
  const values = (element.Value ?? []).map((v) => {
    const uid = String(v).replace(/\0/g, '').trim();
    return uid === '' || uid.startsWith(STANDARD_UID_ROOT) ? uid : context.key.uid(uid);
  });
  ds[tag] = { vr: element.vr, Value: values };
}

function shiftDates(ds: DenaturalizedDataset, tag: string, element: DicomElement, days: number): void {
  const shift = element.vr === 'DT' ? shiftDt : shiftDa;
  ds[tag] = { vr: element.vr, Value: (element.Value ?? []).map((v) => shift(String(v), days)) };
}

/** Private creator elements (gggg,0010-00FF) of this data set: `gggg` + block byte → creator. */
function privateCreators(ds: DenaturalizedDataset): Map<string, string> {
  const creators = new Map<string, string>();
  for (const [tag, element] of Object.entries(ds)) {
    const el = parseInt(tag.slice(4), 16);
    if (parseInt(tag.slice(0, 4), 16) % 2 === 1 && el >= 0x10 && el <= 0xff) {
      const value = element.Value?.[0];
      // In Implicit VR files a creator may come as UN (raw bytes) rather than LO.
      const creator = value instanceof ArrayBuffer ? Buffer.from(value).toString('latin1') : scalar(value);
      creators.set(tag.slice(0, 4) + tag.slice(6, 8), creator.replace(/\0/g, '').trim());
    }
  }
  return creators;
}

function keepPrivate(tag: string, creators: Map<string, string>, allowed: Set<string>): boolean {
  const group = tag.slice(0, 4);
  const el = parseInt(tag.slice(4), 16);
  if (el >= 0x10 && el <= 0xff) return allowed.has(`${group}|${creators.get(group + tag.slice(6, 8)) ?? ''}`);
  if (el < 0x1000) return false;
  const creator = creators.get(group + tag.slice(4, 6));
  return creator !== undefined && allowed.has(`${group}|${creator}|${tag.slice(6, 8)}`);
}

function allowedPrivate(profile: DeidentificationProfile): Set<string> {
  const allowed = new Set<string>();
  for (const { group, creator, element } of profile.privateTagAllowList) {
    allowed.add(`${group.toUpperCase()}|${creator.trim()}`);
    allowed.add(`${group.toUpperCase()}|${creator.trim()}|${element.toUpperCase()}`);
  }
  return allowed;
}

const CODES = {
  basic: ['113100', 'Basic Application Confidentiality Profile'],
  cleanPixels: ['113101', 'Clean Pixel Data Option'],
  longitudinal: ['113107', 'Retain Longitudinal With Modified Dates Option'],
  patient: ['113108', 'Retain Patient Characteristics Option'],
  device: ['113109', 'Retain Device Identity Option'],
} as const;

const SCRUB_METHOD = 'Known Patient Identifiers Masked in Text';

function markDeidentified(ds: DenaturalizedDataset, profile: DeidentificationProfile, masked: boolean): void {
  const used: (keyof typeof CODES)[] = ['basic'];
  if (masked) used.push('cleanPixels');
  if (profile.retainLongitudinalTemporalInformationModifiedDates) used.push('longitudinal');
  if (profile.retainPatientCharacteristics) used.push('patient');
  if (profile.retainDeviceIdentity) used.push('device');
  ds['00120062'] = { vr: 'CS', Value: ['YES'] };
  // The scrub has no code of its own (it is less than the Clean Descriptors Option): the method text names it.
  const method: string[] = used.map((k) => CODES[k][1]);
  if (profile.scrubKnownIdentifiers) method.push(SCRUB_METHOD);
  ds['00120063'] = { vr: 'LO', Value: method };
  ds['00120064'] = {
    vr: 'SQ',
    Value: used.map((k) => ({
      '00080100': { vr: 'SH', Value: [CODES[k][0]] },
      '00080102': { vr: 'SH', Value: ['DCM'] },
      '00080104': { vr: 'LO', Value: [CODES[k][1]] },
    })),
  };
  ds['00280303'] = { vr: 'CS', Value: [profile.retainLongitudinalTemporalInformationModifiedDates ? 'MODIFIED' : 'REMOVED'] };
}

/** The first value of an element as text ('' when absent); person names give their alphabetic form. */
export function text(ds: DenaturalizedDataset, tag: string): string {
  const value = ds[tag]?.Value?.[0];
  const raw = typeof value === 'object' && value !== null && 'Alphabetic' in value ? (value as { Alphabetic?: unknown }).Alphabetic : value;
  return scalar(raw).replace(/\0/g, '').trim();
}

function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return '';
}

/**
 * A copy for dcmjs, its OV, SV and UV elements (an Extended Offset Table) labelled OB: dcmjs
 * 0.51 knows none of the three, and would read them as UN, which the action table removes,
 * logging to the console as it went.
 */
function toArrayBuffer(bytes: Uint8Array, newer: readonly ElementHeader[]): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  relabel(copy, newer, 'OB');
  return copy.buffer;
}

/** Gives the elements toArrayBuffer labelled OB their own VR again, in what dcmjs wrote (same header layout). */
function restoreNewerVrs(written: Uint8Array, newer: readonly ElementHeader[]): void {
  if (newer.length === 0) return;
  const vrOf = new Map(newer.map((e) => [e.tag, e.vr]));
  const back: ElementHeader[] = [];
  visitHeaderElements(written, (e) => {
    if (e.vr === 'OB' && vrOf.has(e.tag)) back.push(e);
  });
  for (const e of back) relabel(written, [e], vrOf.get(e.tag)!);
}
