import type { DenaturalizedDataset, DicomElement } from 'dcmjs';

/**
 * The known identifier scrub: the patient's own identifiers, taken from the original header,
 * are masked wherever staff typed them into text that de-identification keeps (a comment the
 * table does not name, an allow-listed private element). Each letter and digit of a match
 * becomes X, punctuation and spacing stay, so a value keeps its length (and stays within its
 * VR's maximum) and a reader sees that something was removed.
 */
export type Scrub = (value: string) => string;

/** Text VRs whose values are scanned (PN too: a kept private person name). */
export const TEXT_VRS: ReadonlySet<string> = new Set(['LO', 'SH', 'ST', 'LT', 'UT', 'UC']);
/** Raw values larger than this are not decoded as text (a blob, not something typed). */
const MAX_RAW_TEXT_BYTES = 64 * 1024;
const MIN_NAME_LENGTH = 2;
/** Shorter IDs would mask ordinary numbers (angles, counts) and identify no one. */
const MIN_ID_LENGTH = 3;

const PERSON_NAME_TAGS = ['00100010', '00101001', '00101005']; // Patient's Name, Other Patient Names, Patient's Birth Name
const ID_TAGS = ['00100020', '00101000', '00080050', '00380010', '00101090']; // Patient ID, Other Patient IDs, Accession Number, Admission ID, Medical Record Locator
const OTHER_PATIENT_IDS_SEQUENCE = '00101002';
const BIRTH_DATE = '00100030';

/** Words of a multi-word name that are matched only as part of the whole name ("van", "de"). */
const PARTICLES = new Set(['al', 'ben', 'bin', 'da', 'de', 'del', 'della', 'den', 'der', 'di', 'do', 'dos', 'du', 'el', 'ibn', 'la', 'le', 'st', 'ten', 'ter', 'van', 'von', 'zu']);
const MONTHS = ['jan(?:uary)?', 'feb(?:ruary)?', 'mar(?:ch)?', 'apr(?:il)?', 'may', 'june?', 'july?', 'aug(?:ust)?', 'sep(?:t(?:ember)?)?', 'oct(?:ober)?', 'nov(?:ember)?', 'dec(?:ember)?'];
/** Between the parts of a name written out: "Jane Doe", "Doe, Jane", "Doe^Jane", "J. Doe". */
const NAME_SEPARATOR = '[\\s,.^]+';
const DATE_SEPARATOR = '[-./]';

type Edge = 'letter' | 'digit' | 'other';
interface Alternative {
  source: string;
  /** Length of the literal it stands for: longer alternatives are tried first. */
  weight: number;
}

/**
 * The scrub for one run: a function masking the patient's identifiers (read from the original,
 * not yet de-identified, data set) in a text value; undefined when the header names none.
 */
export function knownIdentifierScrub(ds: DenaturalizedDataset): Scrub | undefined {
  const alternatives = new Map<string, Alternative>();
  const add = (alternative: Alternative): void => {
    alternatives.set(alternative.source, alternative);
  };
  for (const tag of PERSON_NAME_TAGS) for (const name of personNames(ds[tag])) for (const a of nameAlternatives(name)) add(a);
  const ids = ID_TAGS.flatMap((tag) => strings(ds[tag]));
  for (const item of (ds[OTHER_PATIENT_IDS_SEQUENCE]?.Value ?? []) as DenaturalizedDataset[]) ids.push(...strings(item['00100020']));
  for (const id of ids) if (id.length >= MIN_ID_LENGTH) add(literal(id));
  for (const date of strings(ds[BIRTH_DATE])) for (const a of dateAlternatives(date)) add(a);
  if (alternatives.size === 0) return undefined;
  const ordered = [...alternatives.values()].sort((a, b) => b.weight - a.weight || (a.source < b.source ? -1 : 1));
  const pattern = new RegExp(ordered.map((a) => a.source).join('|'), 'giu');
  return (value) => value.replace(pattern, mask);
}

/** Masks, in place, every kept text value of a de-identified data set, at any depth. */
export function scrubDataset(ds: DenaturalizedDataset, scrub: Scrub): void {
  for (const [tag, element] of Object.entries(ds)) {
    const scrubbed = scrubElement(tag, element, scrub);
    if (scrubbed !== undefined) ds[tag] = { vr: element.vr, Value: scrubbed };
  }
}

/** The element's new values, or undefined when nothing in it changed. */
function scrubElement(tag: string, element: DicomElement, scrub: Scrub): unknown[] | undefined {
  const values = element.Value ?? [];
  if (element.vr === 'SQ') {
    for (const item of values) scrubDataset(item as DenaturalizedDataset, scrub);
    return undefined;
  }
  let changed = false;
  const replace = <T>(before: T, after: T): T => {
    if (after !== before) changed = true;
    return after;
  };
  let next: unknown[];
  if (TEXT_VRS.has(element.vr)) {
    next = values.map((v) => (typeof v === 'string' ? replace(v, scrub(v)) : v));
  } else if (element.vr === 'PN') {
    next = values.map((v) => (typeof v === 'string' ? replace(v, scrub(v)) : scrubPersonName(v, scrub, () => (changed = true))));
  } else if (element.vr === 'UN' || (element.vr === 'OB' && parseInt(tag.slice(0, 4), 16) % 2 === 1)) {
    // Raw bytes: an Implicit VR private element, or a vendor's text kept as OB.
    next = values.map((v) => (v instanceof ArrayBuffer ? replace(v, scrubRaw(v, scrub) ?? v) : v));
  } else {
    return undefined;
  }
  return changed ? next : undefined;
}

function scrubPersonName(value: unknown, scrub: Scrub, changed: () => void): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const groups = { ...(value as Record<string, unknown>) };
  let any = false;
  for (const [group, text] of Object.entries(groups)) {
    if (typeof text !== 'string') continue;
    const scrubbed = scrub(text);
    if (scrubbed !== text) {
      groups[group] = scrubbed;
      any = true;
    }
  }
  if (!any) return value;
  changed();
  return groups;
}

/** Printable text, optionally NUL-padded: anything else (controls other than TAB, LF, VT, FF, CR, ESC; binary) is not scanned. */
function printable(text: string): boolean {
  const end = text.replace(/\0+$/, '').length;
  for (let i = 0; i < end; i += 1) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && !(c >= 0x09 && c <= 0x0d) && c !== 0x1b) || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

/** Decodes raw bytes as UTF-8 (else Latin-1); when they are text and the scrub changes it, the new bytes. */
function scrubRaw(buffer: ArrayBuffer, scrub: Scrub): ArrayBuffer | undefined {
  if (buffer.byteLength === 0 || buffer.byteLength > MAX_RAW_TEXT_BYTES) return undefined;
  const bytes = Buffer.from(buffer);
  let encoding: 'utf8' | 'latin1' = 'utf8';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    encoding = 'latin1';
    text = bytes.toString('latin1');
  }
  if (!printable(text)) return undefined;
  const scrubbed = scrub(text);
  if (scrubbed === text) return undefined;
  // Masking a multi-byte character with X shortens the bytes: values keep an even length.
  const encoded = Buffer.from(scrubbed, encoding);
  const out = new Uint8Array(encoded.length + (encoded.length % 2));
  out.set(encoded);
  if (encoded.length % 2 === 1) out[encoded.length] = 0x20;
  return out.buffer;
}

function mask(match: string): string {
  return match.replace(/[\p{L}\p{N}]/gu, 'X');
}

/** Family, given and middle name of each component group of a PN (prefix and suffix, "Dr", "Jr", identify no one). */
function personNames(element: DicomElement | undefined): string[][] {
  const names: string[][] = [];
  for (const value of element?.Value ?? []) {
    const groups = typeof value === 'string' ? value.split('=') : typeof value === 'object' && value !== null ? Object.values(value as Record<string, unknown>) : [];
    for (const group of groups) {
      if (typeof group !== 'string') continue;
      const parts = group.split('^').slice(0, 3).map(clean);
      if (parts.some((p) => p !== '')) names.push(parts);
    }
  }
  return names;
}

function nameAlternatives([family = '', given = '', middle = '']: string[]): Alternative[] {
  const out: Alternative[] = [];
  for (const component of [family, given, middle]) {
    if (component.length >= MIN_NAME_LENGTH) out.push(phrase([component]));
    const words = component.split(/[\s-]+/).filter((w) => w !== '');
    if (words.length > 1) {
      for (const word of words) if (word.length >= MIN_NAME_LENGTH && !PARTICLES.has(word.toLowerCase())) out.push(phrase([word]));
    }
  }
  // Whole names, also with initials ("J. Doe", "Doe, J.", "Jane Q. Doe"), so that the initials go with them.
  if (family !== '' && given !== '') {
    for (const first of new Set([given, initial(given)])) {
      out.push(phrase([first, family]), phrase([family, first]));
      for (const second of new Set(middle === '' ? [] : [middle, initial(middle)])) out.push(phrase([first, second, family]), phrase([family, first, second]));
    }
  }
  return out;
}

function initial(name: string): string {
  return [...name][0] ?? '';
}

/** Name parts in order, any run of separators between them, whitespace inside a part matching any whitespace. */
function phrase(parts: string[]): Alternative {
  const text = parts.join(' ');
  const source = parts.map((p) => p.split(/\s+/).map(escape).join('\\s+')).join(NAME_SEPARATOR);
  return bounded(source, edge(text[0]), edge(text[text.length - 1]), text.length);
}

/** An identifier as written, whitespace inside it matching any whitespace. */
function literal(id: string): Alternative {
  return bounded(id.split(/\s+/).map(escape).join('\\s+'), edge(id[0]), edge(id[id.length - 1]), id.length);
}

/** A DA birth date as staff write it: 19510704, 1951-07-04, 04.07.1951, 07/04/1951, 4 Jul 1951, July 4, 1951. */
function dateAlternatives(da: string): Alternative[] {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da);
  if (m === null) return [];
  const [, year = '', month = '', day = ''] = m;
  const monthIndex = Number(month) - 1;
  const monthName = MONTHS[monthIndex];
  if (monthName === undefined || Number(day) < 1 || Number(day) > 31) return [];
  const mm = `0?${Number(month)}`;
  const dd = `0?${Number(day)}`;
  const years = `(?:${year}|${year.slice(2)})`;
  const s = DATE_SEPARATOR;
  const ordinal = '(?:st|nd|rd|th)?';
  return [
    bounded(`${year}${month}${day}`, 'digit', 'digit', 8),
    bounded(`${year}${s}${mm}${s}${dd}`, 'digit', 'digit', 10),
    bounded(`${dd}${s}${mm}${s}${years}`, 'digit', 'digit', 10),
    bounded(`${mm}${s}${dd}${s}${years}`, 'digit', 'digit', 10),
    bounded(`${dd}${ordinal}[\\s.-]*(?:${monthName})\\.?[\\s.,-]*${year}`, 'digit', 'digit', 11),
    bounded(`(?:${monthName})\\.?\\s*${dd}${ordinal},?\\s*${year}`, 'letter', 'digit', 11),
  ];
}

/**
 * Whole-token matching: a match may not continue a word of its own kind, so a patient
 * named "Al" leaves "Aldrich" alone and ID 1234 leaves 12345 alone, while "ID1234" and
 * "Doe-Smith" are still found.
 */
function bounded(source: string, first: Edge, last: Edge, weight: number): Alternative {
  const before = first === 'letter' ? '(?<![\\p{L}\\p{M}])' : first === 'digit' ? '(?<!\\p{N})' : '';
  const after = last === 'letter' ? '(?![\\p{L}\\p{M}])' : last === 'digit' ? '(?!\\p{N})' : '';
  return { source: `${before}(?:${source})${after}`, weight };
}

function edge(char: string | undefined): Edge {
  if (char === undefined) return 'other';
  if (/\p{L}/u.test(char)) return 'letter';
  if (/\p{N}/u.test(char)) return 'digit';
  return 'other';
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function clean(value: string): string {
  return value.replace(/\0/g, '').trim().replace(/\s+/g, ' ');
}

function strings(element: DicomElement | undefined): string[] {
  return (element?.Value ?? []).filter((v): v is string => typeof v === 'string').map(clean).filter((v) => v !== '');
}
