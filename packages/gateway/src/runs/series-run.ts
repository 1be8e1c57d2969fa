import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { orderSeriesFrames, readHeaderFromFile, seriesFragmentItems, seriesFrameOf, seriesFrameTimeMs, seriesRunHeader, type ByteSpan, type SeriesFrame } from '@arteria/dicom';

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
export async function writeSeriesRun(paths: readonly string[], folder: string): Promise<string> {
  const frames: (SeriesFrame & { path: string })[] = [];
  for (const path of paths) frames.push({ ...seriesFrameOf(await readInstance(path)), path });
  const ordered = orderSeriesFrames(frames);
  const first = ordered[0]!;
  const frameTimeMs = first.header.frameTimeMs ?? seriesFrameTimeMs(ordered);
  const header = seriesRunHeader(await readInstance(first.path), ordered, frameTimeMs);
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

/** What a folder of files makes: runs on their own, and series of single frames to be made into one run each. */
export type FolderRun = { kind: 'file'; path: string } | { kind: 'series'; seriesInstanceUid: string; paths: string[] };

/**
 * Groups files into the runs they make: two or more single-frame instances of one series
 * become one series (for writeSeriesRun); every other file (a multi-frame run, a lone frame,
 * a file that is not DICOM, which is then refused by name when sent) is a run on its own.
 * Reads headers only. Runs keep the order of their first file in `paths`.
 */
export async function groupFolderRuns(paths: readonly string[]): Promise<FolderRun[]> {
  const runs: FolderRun[] = [];
  const series = new Map<string, { kind: 'series'; seriesInstanceUid: string; paths: string[] }>();
  for (const path of paths) {
    const uid = await singleFrameSeriesOf(path);
    const group = uid === undefined ? undefined : series.get(uid);
    if (group !== undefined) group.paths.push(path);
    else if (uid === undefined) runs.push({ kind: 'file', path });
    else {
      const created = { kind: 'series' as const, seriesInstanceUid: uid, paths: [path] };
      series.set(uid, created);
      runs.push(created);
    }
  }
  return runs.map((run) => (run.kind === 'series' && run.paths.length === 1 ? { kind: 'file', path: run.paths[0]! } : run));
}

/** The Series Instance UID of a single-frame image instance, else undefined (not one, or unreadable). */
export async function singleFrameSeriesOf(path: string): Promise<string | undefined> {
  try {
    const header = await readHeaderFromFile(path);
    return header.numberOfFrames === 1 && header.hasPixelData && header.seriesInstanceUid !== '' ? header.seriesInstanceUid : undefined;
  } catch {
    return undefined; // sent on its own, and refused there with its own error
  }
}

/**
 * A folder name for a series' frames: its Series Instance UID when that is a well-formed UID
 * (digits and dots, as DICOM requires), else a digest of the frames' names: a file's header
 * never names a path.
 */
export function seriesFolderName(uid: string, names: readonly string[]): string {
  if (/^[0-9]+(\.[0-9]+)*$/.test(uid) && uid.length <= 64) return uid;
  return `series-${createHash('sha256').update(names.join('\n')).digest('hex').slice(0, 16)}`;
}
