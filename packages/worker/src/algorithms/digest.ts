import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * The artifact digest pins an algorithm version to exactly the bytes that run: the
 * manifest, every file under the entry's folder and the model file. Files are hashed in
 * sorted relative-path order; each contributes its path and its length before its
 * contents, so moving bytes between files or renaming one changes the digest too.
 */
export interface ArtifactDigest {
  /** `sha256:<hex>` over the whole artifact. */
  digest: string;
  /** Plain SHA-256 hex of each hashed file, by relative path ('/' separators). */
  files: ReadonlyMap<string, string>;
}

/** Installed dependencies and VCS data are not part of an algorithm's own artifact. */
const SKIPPED = new Set(['node_modules', '.git']);

/** Relative paths ('/' separators) of every regular file under `root/sub`, recursively. */
async function listFiles(root: string, sub: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(path.join(root, sub), { withFileTypes: true });
  for (const entry of entries) {
    if (SKIPPED.has(entry.name)) continue;
    const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory()) {
      out.push(...(await listFiles(root, rel)));
    } else if (entry.isFile()) {
      out.push(rel);
    } else if (entry.isSymbolicLink()) {
      // Follow links: what runs is the target's content.
      const target = await stat(path.join(root, rel));
      if (target.isFile()) out.push(rel);
      else if (target.isDirectory()) out.push(...(await listFiles(root, rel)));
    }
  }
  return out;
}

async function hashFile(file: string, whole: Hash): Promise<string> {
  const own = createHash('sha256');
  for await (const chunk of createReadStream(file)) {
    const bytes = chunk as Buffer;
    whole.update(bytes);
    own.update(bytes);
  }
  return own.digest('hex');
}

/**
 * Hashes `manifestFile` plus every file under each of `folders` and each of `files`
 * (all relative to `root`, '.' meaning the whole folder).
 */
export async function artifactDigest(
  root: string,
  parts: { folders: readonly string[]; files: readonly string[] },
): Promise<ArtifactDigest> {
  const names = new Set<string>(parts.files.map((f) => f.split(path.sep).join('/')));
  for (const folder of parts.folders) {
    const sub = folder === '.' ? '' : folder.split(path.sep).join('/');
    for (const rel of await listFiles(root, sub)) names.add(rel);
  }
  const sorted = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const whole = createHash('sha256');
  const files = new Map<string, string>();
  for (const rel of sorted) {
    const abs = path.join(root, rel);
    const { size } = await stat(abs);
    whole.update(`${rel}\0${size}\0`);
    files.set(rel, await hashFile(abs, whole));
  }
  return { digest: `sha256:${whole.digest('hex')}`, files };
}

/**
 * The same digest over files held in memory (an artifact archive being verified before
 * it is unpacked): `files` maps relative paths ('/' separators) to their bytes.
 */
export function digestOfFiles(files: ReadonlyMap<string, Uint8Array>): string {
  const sorted = [...files.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const whole = createHash('sha256');
  for (const rel of sorted) {
    const bytes = files.get(rel) as Uint8Array;
    whole.update(`${rel}\0${bytes.byteLength}\0`);
    whole.update(bytes);
  }
  return `sha256:${whole.digest('hex')}`;
}
