import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** How deep a folder is searched: a DICOM media export is DICOM/{patient}/{study}/{series}/{image}. */
export const MAX_FOLDER_DEPTH = 8;

export interface FolderFilesOptions {
  /** Top-level entries not to look into (a watched folder's own sent/ and failed/). */
  skipTopLevel?: readonly string[];
  /** Take a symbolic link to a file as that file (a folder someone named to send on purpose); links to folders are never followed. Default false. */
  followFileLinks?: boolean;
}

/**
 * Every regular file beneath `folder`, subfolders included, as paths relative to it with `/`
 * between parts, sorted. Left out: names starting with a dot (a gateway's own work files, a
 * desktop's metadata), DICOMDIR (an export's index of its files, not a run), symbolic links
 * (a link could lead out of the folder, or round in a circle; `followFileLinks` takes links to
 * files), and anything deeper than
 * MAX_FOLDER_DEPTH. A subfolder that disappears while it is read is skipped.
 */
export async function listFolderFiles(folder: string, options: FolderFilesOptions = {}): Promise<string[]> {
  const files: string[] = [];
  const skip = new Set(options.skipTopLevel ?? []);
  const walk = async (relative: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(relative === '' ? folder : join(folder, relative), { withFileTypes: true });
    } catch (err) {
      if (relative !== '' && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      const name = entry.name;
      if (name.startsWith('.') || name.toUpperCase() === 'DICOMDIR') continue;
      const path = relative === '' ? name : `${relative}/${name}`;
      if (entry.isFile() || (entry.isSymbolicLink() && options.followFileLinks === true && (await isFileBehind(join(folder, path))))) files.push(path);
      else if (entry.isDirectory() && depth < MAX_FOLDER_DEPTH && !(relative === '' && skip.has(name))) await walk(path, depth + 1);
    }
  };
  await walk('', 0);
  return files.sort();
}

async function isFileBehind(link: string): Promise<boolean> {
  return stat(link).then((s) => s.isFile(), () => false);
}

/** Whether the file starts as a DICOM Part 10 file does: a 128-byte preamble, then "DICM". */
export async function isPart10(path: string): Promise<boolean> {
  const file = await open(path, 'r').catch(() => undefined);
  if (file === undefined) return false;
  try {
    const head = Buffer.alloc(132);
    const { bytesRead } = await file.read(head, 0, 132, 0);
    return bytesRead === 132 && head.toString('latin1', 128, 132) === 'DICM';
  } finally {
    await file.close();
  }
}

/** Whether a file in a folder is taken as a run: named `.dcm` (refused by name if it is not DICOM), or a Part 10 file under any name. */
export async function looksLikeRun(path: string): Promise<boolean> {
  return path.toLowerCase().endsWith('.dcm') || isPart10(path);
}
