import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { orderSeriesFrames, seriesFrameOf, seriesFrameTimeMs, seriesRunHeader, type SeriesFrame } from '@arteria/dicom';
import type { ReceivedInstance } from './receiver.js';

/** Largest single-frame instance read whole for assembly (a 4096 x 4096 16-bit frame is 32 MiB). */
const MAX_INSTANCE_BYTES = 64 * 2 ** 20;

/**
 * Writes a series of single-frame instances (a modality that stores a run frame by frame) as
 * one multi-frame run file in `folder`, frames in acquisition order (seriesFrameOf and
 * orderSeriesFrames in @arteria/dicom), and returns its path. The file's name and bytes
 * follow from the instances alone, so a series assembled again after a restart is the same
 * run, which joins the one already in the outbox. Throws UNSUPPORTED_DICOM when the frames
 * cannot make one run (compressed, or of different sizes): the caller then sends them one
 * by one, as they came.
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
    const frame = Buffer.allocUnsafe(first.frameBytes);
    for (const f of ordered) {
      const source = await open(f.path, 'r');
      try {
        const { bytesRead } = await source.read(frame, 0, f.frameBytes, f.pixelOffset);
        if (bytesRead !== f.frameBytes) throw new Error(`${f.path} holds ${bytesRead} of its frame's ${f.frameBytes} bytes`);
      } finally {
        await source.close();
      }
      await out.write(frame);
    }
    if ((ordered.length * first.frameBytes) % 2 === 1) await out.write(Buffer.alloc(1));
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(partial, path);
  return path;
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
