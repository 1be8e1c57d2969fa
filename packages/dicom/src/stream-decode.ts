import { ArteriaError } from '@arteria/protocol';
import { nativePixelSpan, runLayout, viewUint16, type NativePixelSpan } from './decode.js';
import { nativeColorLuminance } from './color.js';
import { DEFAULT_MAX_HEADER_BYTES, isColor } from './header.js';
import { parsePart10 } from './part10.js';
import { ENCAPSULATED_TRANSFER_SYNTAXES } from './transfer-syntax.js';
import type { DicomHeader, FrameBatch, FrameLayout } from './types.js';

/** Default size of one batch of frames: a few frames of a 1024x1024 run. */
export const DEFAULT_BATCH_BYTES = 8 << 20;

export interface FrameStreamOptions {
  /** Target bytes of pixels per batch; a batch always holds at least one frame. Default 8 MiB. */
  batchBytes?: number;
  /** How far into the stream the Pixel Data element must start; default 4 MiB. */
  maxHeaderBytes?: number;
}

/**
 * A run opened from a stream: its frames as they arrive, or (for runs the stream
 * decoder does not read) the whole file, to be decoded with decodeRun.
 */
export type OpenedRun =
  | { kind: 'frames'; header: DicomHeader; frames: FrameLayout; batches: AsyncIterable<FrameBatch> }
  | { kind: 'whole'; bytes: Uint8Array };

interface Placed {
  header: DicomHeader;
  layout: FrameLayout;
  span: NativePixelSpan;
}

/**
 * Opens a Part 10 run arriving as `chunks` that total `totalBytes` (the size the input
 * source verifies). A native (uncompressed) run is read as it arrives: its header from
 * the first chunk(s), then its frames in batches, holding at most one batch and one
 * chunk, whatever the run's size (a color run's batches are turned into luminance as they
 * come, nativeColorLuminance). Anything else (a compressed syntax, a header this
 * decoder cannot place, a malformed Pixel Data) is collected whole, and decodeRun then
 * decodes it or reports exactly the error it always did.
 */
export async function openFrameStream(chunks: AsyncIterable<Uint8Array>, totalBytes: number, options: FrameStreamOptions = {}): Promise<OpenedRun> {
  const iterator = chunks[Symbol.asyncIterator]();
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  let prefix: Uint8Array = new Uint8Array(0);
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) break;
    prefix = concat(prefix, next.value);
    if (prefix.length < 132 && prefix.length < totalBytes) continue;
    const placed = placePixels(prefix, totalBytes);
    if (placed === 'whole') break;
    if (placed === 'unsure') {
      if (prefix.length < maxHeaderBytes && prefix.length < totalBytes) continue;
      break;
    }
    const pending = prefix.subarray(placed.span.dataOffset);
    return { kind: 'frames', header: placed.header, frames: placed.layout, batches: readBatches(iterator, pending, placed, batchBytes) };
  }
  return { kind: 'whole', bytes: await collectRest(iterator, prefix, totalBytes) };
}

/**
 * Where the pixels of a native run start, from a prefix of its file. 'unsure' while the
 * prefix may end before the Pixel Data element; 'whole' for a run read as a whole file.
 */
function placePixels(prefix: Uint8Array, totalBytes: number): Placed | 'unsure' | 'whole' {
  let parsed;
  try {
    parsed = parsePart10(prefix);
  } catch (err) {
    // A prefix may end inside an element, which reads as a parse error: wait for more,
    // and if the whole header never parses, decodeRun reports why.
    return err instanceof ArteriaError && err.code === 'UNSUPPORTED_TRANSFER_SYNTAX' ? 'whole' : 'unsure';
  }
  const { header, dataSet } = parsed;
  // Compressed: read whole. Native color streams too, each batch turned into luminance.
  if (ENCAPSULATED_TRANSFER_SYNTAXES[header.transferSyntaxUid] !== undefined) return 'whole';
  if (!header.hasPixelData) return 'unsure';
  try {
    const layout = runLayout(header, dataSet);
    const span = nativePixelSpan(header, dataSet, totalBytes);
    return span.dataOffset <= prefix.length ? { header, layout, span } : 'unsure';
  } catch (err) {
    // The run is malformed or unsupported: decodeRun on the whole file reports it.
    return err instanceof ArteriaError ? 'whole' : 'unsure';
  }
}

async function* readBatches(iterator: AsyncIterator<Uint8Array>, pending: Uint8Array, placed: Placed, batchBytes: number): AsyncGenerator<FrameBatch> {
  const { layout, span, header } = placed;
  const color = isColor(header);
  const frameSamples = layout.rows * layout.columns;
  const frameBytes = frameSamples * span.bytesPerSample * (color ? 3 : 1);
  const perBatch = Math.max(1, Math.floor(batchBytes / frameBytes));
  let carry = pending;
  let read = 0;
  try {
    for (let first = 0; first < layout.frameCount; first += perBatch) {
      const count = Math.min(perBatch, layout.frameCount - first);
      // A fresh buffer per batch: an algorithm may keep a batch's frames.
      const out = new Uint8Array(count * frameBytes);
      let filled = 0;
      while (filled < out.length) {
        if (carry.length === 0) {
          const next = await iterator.next();
          if (next.done === true) {
            throw new ArteriaError('INVALID_DICOM', `file is truncated: Pixel Data needs ${span.byteLength} bytes, only ${read + filled} remain`);
          }
          carry = next.value;
        }
        const take = Math.min(carry.length, out.length - filled);
        out.set(carry.subarray(0, take), filled);
        filled += take;
        carry = carry.subarray(take);
      }
      read += filled;
      const pixels = color ? nativeColorLuminance(out, count, header) : span.bytesPerSample === 1 ? out : viewUint16(out, count * frameSamples, layout.bitsStored);
      yield { firstFrame: first, frameCount: count, pixels };
    }
  } finally {
    // Whatever follows the pixels (padding, trailing elements) is not needed: the algorithm
    // may answer as soon as its last frame arrives, and the source's own reader checks the
    // rest.
    await iterator.return?.();
  }
}

/**
 * A run arriving as `chunks` that total `totalBytes`, gathered into one buffer: for a
 * consumer that needs the whole file anyway (decodeRun then makes native frames views of
 * it), one copy of each chunk instead of a copy per frame batch and another into a stack.
 * A run that arrives as one chunk (read whole by the sender) is returned as it is, not
 * copied. A stream longer than declared is CHECKSUM_MISMATCH; a shorter one returns what came.
 */
export async function readWhole(chunks: AsyncIterable<Uint8Array>, totalBytes: number): Promise<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) return new Uint8Array(0);
  if (first.value.length > totalBytes) throw longerThanDeclared(totalBytes);
  if (first.value.length < totalBytes) return collectRest(iterator, first.value, totalBytes);
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
    if (next.value.length > 0) throw longerThanDeclared(totalBytes);
  }
  return first.value;
}

const longerThanDeclared = (totalBytes: number): ArteriaError => new ArteriaError('CHECKSUM_MISMATCH', `the input is longer than its declared ${totalBytes} bytes`);

async function collectRest(iterator: AsyncIterator<Uint8Array>, prefix: Uint8Array, totalBytes: number): Promise<Uint8Array> {
  const whole = new Uint8Array(Math.max(totalBytes, prefix.length));
  whole.set(prefix);
  let filled = prefix.length;
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) break;
    if (filled + next.value.length > whole.length) throw longerThanDeclared(totalBytes);
    whole.set(next.value, filled);
    filled += next.value.length;
  }
  return filled === whole.length ? whole : whole.subarray(0, filled);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
