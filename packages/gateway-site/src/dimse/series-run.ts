import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { orderSeriesFrames, seriesFragmentItems, seriesFrameOf, seriesFrameTimeMs, seriesRunHeader, type ByteSpan, type SeriesFrame } from '@arteria/dicom';
import type { ReceivedInstance } from './receiver.js';

/** Largest single-frame instance read whole for assembly (a 4096 x 4096 16-bit frame is 32 MiB). */
const MAX_INSTANCE_BYTES = 64 * 2 ** 20;

/**
 * Writes a series of single-frame instances (a modality that stores a run frame by frame) as
 * one multi-frame run file in `folder`, frames in acquisition order (seriesFrameOf and
 * orderSeriesFrames in @arteria/dicom), and returns its path. The file's name and bytes
 * follow from the instances alone, so a series assembled again after a restart is the same
 * run, which joins the one already in the outbox. Compressed frames keep their fragments and
 * syntax. Throws UNSUPPORTED_DICOM when the frames cannot make one run (different sizes, or
 * syntaxes): the caller then sends them one by one, as they came.
 */
export async function writeSeriesRun(instances: readonly ReceivedInstance[], folder: string): Promise<string> {
  const frames: (SeriesFrame & { path: string })[] = [];
  for (const instance of instances) {
    const bytes = await readInstance(instance.path);
    frames.push({ ...seriesFrameOf(bytes), path: instance.path });
  }
  const ordered = orderSeriesFrames(frames);
  const first = ordered[0]!;
  const frameTimeMs = first.header.frameTimeMs ?? seriesFrameTimeMs(ordered);
  const header = seriesRunHeader(await readInstance(first.path), first, ordered.length, frameTimeMs);
  const name = createHash('sha256').update(ordered.map((f) => f.header.sopInstanceUid).join('\n')).digest('hex').slice(0, 32);
  await mkdir(folder, { recursive: true });
  const path = join(folder, `${name}.dcm`);
  const partial = `${path}.partial`;
  const out = await open(partial, 'w');
  try {
    await out.write(header);
    if (first.encapsulated) {
      // Each frame's fragments as they came, behind a Basic Offset Table.
      const { table, itemHeader, delimiter } = seriesFragmentItems(ordered);
      await out.write(table);
      for (const f of ordered) {
        for (const span of f.spans) {
          await out.write(itemHeader(span.length));
          await out.write(await readSpan(f.path, span));
          if (span.length % 2 === 1) await out.write(Buffer.alloc(1));
        }
      }
      await out.write(delimiter);
    } else {
      for (const f of ordered) await out.write(await readSpan(f.path, f.spans[0]!));
      if ((ordered.length * first.spans[0]!.length) % 2 === 1) await out.write(Buffer.alloc(1));
    }
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(partial, path);
  return path;
}

/** The bytes of `span` in the file at `path`, all of them. */
async function readSpan(path: string, span: ByteSpan): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const bytes = Buffer.allocUnsafe(span.length);
    const { bytesRead } = await file.read(bytes, 0, span.length, span.offset);
    if (bytesRead !== span.length) throw new Error(`${path} holds ${bytesRead} of ${span.length} bytes at ${span.offset}`);
    return bytes;
  } finally {
    await file.close();
  }
}

async function readInstance(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    if (size > MAX_INSTANCE_BYTES) throw new Error(`${path} is ${size} bytes, more than a single frame is read whole`);
  } finally {
    await file.close();
  }
  return readFile(path);
}
