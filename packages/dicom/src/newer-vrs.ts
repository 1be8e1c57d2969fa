/**
 * dicom-parser (1.8.21, its latest release) predates the value representations OV, SV and UV
 * (DICOM 2019): it reads their explicit-VR header as a short one (2-byte length), so a file
 * holding one (an Extended Offset Table, 7FE0,0001, before the Pixel Data of a large
 * compressed run, most often) fails to parse. Their header has the layout of OB's (2 reserved
 * bytes, 4-byte length), so `parseDataSet` lets dicom-parser read them as OB: it finds them
 * with a walk of the elements before Pixel Data (`visitHeaderElements`), relabels them for the
 * synchronous parse and puts the bytes back before it returns. Nothing else sees the
 * relabelled bytes, and a parsed element's `vr` then reads "OB", which Arteria never relies on
 * for these elements. De-identification (dcmjs 0.51, which knows none of the three either)
 * uses the same walk and relabelling on its own copy.
 */
import dicomParser from 'dicom-parser';
import type { DataSet, ParseDicomOptions } from 'dicom-parser';

/** Transfer syntaxes whose data set is not explicit VR little endian (every other one's is, compressed ones included). */
const OTHER_ENCODINGS = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2']);
const NEWER = new Set(['OV', 'SV', 'UV']);
/** Value representations whose explicit header has 2 reserved bytes and a 4-byte length. */
const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;
/** Deeper nesting than this is left to dicom-parser (and to the de-identification's own bound). */
const MAX_DEPTH = 32;

/** An element's header in a Part 10 file: where it starts, its tag and its VR. */
export interface ElementHeader {
  offset: number;
  /** "ggggeeee", upper-case hex, as dcmjs keys elements. */
  tag: string;
  vr: string;
}

/** dicom-parser's parseDicom, reading OV, SV and UV elements of an explicit-VR little-endian data set. */
export function parseDataSet(bytes: Uint8Array, options?: ParseDicomOptions): DataSet {
  const newer = newerVrElements(bytes);
  if (newer.length === 0) return dicomParser.parseDicom(bytes, options);
  relabel(bytes, newer, 'OB');
  try {
    return dicomParser.parseDicom(bytes, options);
  } finally {
    for (const e of newer) relabel(bytes, [e], e.vr);
  }
}

/** The OV, SV and UV elements before the top-level Pixel Data (nested ones included). */
export function newerVrElements(bytes: Uint8Array): ElementHeader[] {
  const found: ElementHeader[] = [];
  visitHeaderElements(bytes, (e) => {
    if (NEWER.has(e.vr)) found.push(e);
  });
  return found;
}

/** Writes `vr` over the VR of each element (a VR of the same header layout, or the bytes after it are misread). */
export function relabel(bytes: Uint8Array, elements: readonly ElementHeader[], vr: string): void {
  for (const e of elements) {
    bytes[e.offset + 4] = vr.charCodeAt(0);
    bytes[e.offset + 5] = vr.charCodeAt(1);
  }
}

/**
 * Calls `visit` for every element before the top-level Pixel Data (nested items included) of
 * a Part 10 file whose data set is explicit VR little endian (every syntax but implicit VR,
 * deflated and big endian). The walk stops quietly wherever the bytes stop making sense: the
 * parser reports those.
 */
export function visitHeaderElements(bytes: Uint8Array, visit: (element: ElementHeader) => void): void {
  if (bytes.length < 144 || bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let syntax: string | undefined;
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');

  /** Walks elements from `pos` to `end` (or a delimiter); returns where it stopped, or -1 when lost. */
  const walk = (pos: number, until: number, depth: number, top: boolean): number => {
    const end = Math.min(until, bytes.length);
    while (pos + 8 <= end) {
      const group = view.getUint16(pos, true);
      const element = view.getUint16(pos + 2, true);
      if (group === 0xfffe) return pos; // an item or sequence delimiter: the caller's
      if (top && group !== 0x0002 && (syntax === undefined || OTHER_ENCODINGS.has(syntax))) return -1; // a data set in another encoding
      if (top && group === 0x7fe0 && element === 0x0010) return -1; // Pixel Data: the header ends here
      const vr = String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!);
      if (!/^[A-Z]{2}$/.test(vr)) return -1;
      const long = LONG.has(vr);
      if (long && pos + 12 > end) return -1;
      const length = long ? view.getUint32(pos + 8, true) : view.getUint16(pos + 6, true);
      const value = pos + (long ? 12 : 8);
      visit({ offset: pos, tag: hex(group) + hex(element), vr });
      if (group === 0x0002 && element === 0x0010 && length <= 64 && value + length <= end) {
        syntax = String.fromCharCode(...bytes.subarray(value, value + length)).replace(/[\0 ]+$/, '');
      }
      if (length === UNDEFINED) {
        if (vr !== 'SQ') return -1; // UN of undefined length is implicit VR inside
        pos = items(value, end, depth + 1);
        if (pos < 0) return -1;
      } else {
        if (vr === 'SQ' && items(value, value + length, depth + 1) < 0) return -1;
        pos = value + length;
      }
    }
    return pos;
  };

  /** Walks a sequence's items from `pos`; returns the position after its end, or -1 when lost. */
  const items = (pos: number, until: number, depth: number): number => {
    if (depth > MAX_DEPTH) return -1;
    const end = Math.min(until, bytes.length);
    while (pos + 8 <= end) {
      const element = view.getUint16(pos + 2, true);
      if (view.getUint16(pos, true) !== 0xfffe) return -1;
      if (element === 0xe0dd) return pos + 8; // sequence delimiter
      if (element !== 0xe000) return -1;
      const length = view.getUint32(pos + 4, true);
      if (length === UNDEFINED) {
        const stop = walk(pos + 8, end, depth, false);
        if (stop < 0 || stop + 8 > end || view.getUint16(stop + 2, true) !== 0xe00d) return -1;
        pos = stop + 8;
      } else {
        const stop = walk(pos + 8, pos + 8 + length, depth, false);
        if (stop !== pos + 8 + length) return -1; // cut short, or a delimiter inside a defined length
        pos = stop;
      }
    }
    return pos === end ? pos : -1;
  };

  walk(132, bytes.length, 0, true);
}
