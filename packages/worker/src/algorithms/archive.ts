/**
 * A deterministic POSIX ustar archive: entries sorted by path, every timestamp, owner and
 * mode fixed, so the same files always give the same bytes (and the same digest), and
 * any `tar` lists or unpacks it. Only regular files are written or read back.
 */
import { ArteriaError } from '@arteria/protocol';

const BLOCK = 512;

export interface ArchiveEntry {
  /** Relative path with '/' separators. */
  path: string;
  bytes: Uint8Array;
}

function invalid(message: string): ArteriaError {
  return new ArteriaError('ARTIFACT_INVALID', message);
}

/** A path safe to unpack below a folder: relative, no '..', no empty or '.' segments. */
export function assertSafePath(p: string): void {
  const segments = p.split('/');
  if (p.length === 0 || p.startsWith('/') || p.includes('\\') || p.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw invalid(`archive entry "${p}" would be written outside its folder`);
  }
}

function writeString(header: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw invalid(`"${value}" does not fit a ${length}-byte tar field`);
  header.set(bytes, offset);
}

function writeOctal(header: Uint8Array, offset: number, length: number, value: number): void {
  writeString(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** ustar keeps 100 bytes of name and 155 of prefix: split a long path at a '/'. */
function splitPath(p: string): { name: string; prefix: string } {
  if (Buffer.byteLength(p) <= 100) return { name: p, prefix: '' };
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw invalid(`path "${p}" is too long for a ustar archive`);
}

function checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
  return sum;
}

function headerFor(entry: ArchiveEntry): Uint8Array {
  const header = new Uint8Array(BLOCK);
  const { name, prefix } = splitPath(entry.path);
  writeString(header, 0, 100, name);
  writeOctal(header, 100, 8, 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, entry.bytes.byteLength);
  writeOctal(header, 136, 12, 0);
  header[156] = 0x30; // '0': regular file
  writeString(header, 257, 8, 'ustar\u000000');
  writeString(header, 345, 155, prefix);
  writeString(header, 148, 8, `${checksum(header).toString(8).padStart(6, '0')}\0 `);
  return header;
}

export function writeArchive(entries: readonly ArchiveEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Uint8Array[] = [];
  for (const [i, entry] of sorted.entries()) {
    assertSafePath(entry.path);
    if (i > 0 && sorted[i - 1]?.path === entry.path) throw invalid(`archive entry "${entry.path}" appears twice`);
    parts.push(headerFor(entry), entry.bytes);
    const pad = (BLOCK - (entry.bytes.byteLength % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return Buffer.concat(parts);
}

function readString(buf: Buffer, offset: number, length: number): string {
  const field = buf.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

function readOctal(buf: Buffer, offset: number, length: number, what: string): number {
  const text = readString(buf, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw invalid(`tar header field ${what} is not octal`);
  return parseInt(text, 8);
}

/** Every file of an archive this module wrote (or any plain ustar of regular files). */
export function readArchive(buf: Buffer): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  const seen = new Set<string>();
  let offset = 0;
  while (offset + BLOCK <= buf.length) {
    const header = buf.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    if (readOctal(buf, offset + 148, 8, 'chksum') !== checksum(header)) throw invalid(`tar header at byte ${offset} has a wrong checksum`);
    if (readString(buf, offset + 257, 6) !== 'ustar') throw invalid(`entry at byte ${offset} is not a ustar header`);
    const type = header[156];
    if (type !== 0x30 && type !== 0) throw invalid(`entry at byte ${offset} is not a regular file (type ${String.fromCharCode(type ?? 0)})`);
    const prefix = readString(buf, offset + 345, 155);
    const name = readString(buf, offset + 0, 100);
    const p = prefix === '' ? name : `${prefix}/${name}`;
    assertSafePath(p);
    if (seen.has(p)) throw invalid(`archive entry "${p}" appears twice`);
    seen.add(p);
    const size = readOctal(buf, offset + 124, 12, 'size');
    const start = offset + BLOCK;
    if (start + size > buf.length) throw invalid(`entry "${p}" runs past the end of the archive`);
    entries.push({ path: p, bytes: new Uint8Array(buf.subarray(start, start + size)) });
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw invalid('the archive ends without its end-of-archive blocks (truncated?)');
}
