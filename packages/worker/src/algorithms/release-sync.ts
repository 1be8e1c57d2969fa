import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError } from '@arteria/protocol';
import { assertSafePath, readArchive } from './archive.js';
import { SIGNATURE_FILE, verifyArtifactSignature, type ArtifactTrust } from './artifact-signature.js';
import type { ArtifactStore } from './artifact-store.js';
import { verifyReleaseRecord, type ReleaseRecord, type ReleaseStage } from './release-record.js';
import type { AlgorithmRegistry } from './registry.js';

/** Written last into a cached version's folder: its presence means the unpack finished. */
const FETCHED_FILE = '.arteria-fetched';

export interface SyncOptions {
  store: ArtifactStore;
  /** Folder this process owns: one sub-folder per fetched version; others in it are removed. */
  cacheDir: string;
  /** Stages loaded here (a cluster: released; a staging cluster: validated too). */
  stages: readonly ReleaseStage[];
  trust?: ArtifactTrust | undefined;
  /** Exact versions fetched whatever their stage (short of retired): shadow versions a worker runs. */
  alsoVersions?: readonly { name: string; version: string }[];
  /**
   * Remove cached versions no longer wanted (default true). A sync while the process runs
   * passes false: a task may still be running a version just retired; its folder goes at
   * the next start.
   */
  prune?: boolean;
}

export interface SyncedVersion {
  record: ReleaseRecord;
  dir: string;
  /** Fetched from the store now (false: found whole in the cache). */
  fetched: boolean;
}

const folderName = (record: ReleaseRecord): string => `${record.name}-${record.version}-${record.contentDigest.slice(7, 19)}`;

/**
 * Brings the cache in line with the store: every version in `stages` is fetched by its
 * archive digest (checked), its published signature checked against the trusted keys and
 * against the record, unpacked, and kept; cached versions no longer wanted (retired,
 * demoted) are removed. The registry then loads the folders and checks the installed
 * files against the signature again; `assertStoreDigests` checks them against the records.
 */
export async function syncReleasedAlgorithms(options: SyncOptions): Promise<SyncedVersion[]> {
  const keys = options.trust?.publicKeys ?? [];
  const required = options.trust?.requireSignatures ?? false;
  const cacheDir = path.resolve(options.cacheDir);
  await mkdir(cacheDir, { recursive: true });
  const also = options.alsoVersions ?? [];
  const wanted = (await options.store.listRecords()).filter(
    (r) => options.stages.includes(r.stage) || (r.stage !== 'retired' && also.some((v) => v.name === r.name && v.version === r.version)),
  );
  const synced: SyncedVersion[] = [];
  for (const record of wanted) {
    verifyReleaseRecord(record, keys, required);
    const dir = path.join(cacheDir, folderName(record));
    const marker = await readFile(path.join(dir, FETCHED_FILE), 'utf8').catch(() => undefined);
    if (marker?.trim() === record.archiveDigest) {
      synced.push({ record, dir, fetched: false });
      continue;
    }
    await fetchInto(options.store, record, dir, keys);
    synced.push({ record, dir, fetched: true });
  }
  const keep = new Set(synced.map((s) => path.basename(s.dir)));
  if (options.prune === false) return synced;
  for (const entry of await readdir(cacheDir)) {
    if (!keep.has(entry)) await rm(path.join(cacheDir, entry), { recursive: true, force: true });
  }
  return synced;
}

async function fetchInto(store: ArtifactStore, record: ReleaseRecord, dir: string, keys: ArtifactTrust['publicKeys']): Promise<void> {
  const label = `${record.name}@${record.version}`;
  const archive = await store.getArchive(record.archiveDigest);
  const signature = await store.getSignature(record.archiveDigest);
  if (signature !== undefined) {
    if (signature.algorithm !== label || signature.contentDigest !== record.contentDigest || signature.archiveDigest !== record.archiveDigest) {
      throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label}: the stored signature is for ${signature.algorithm} ${signature.contentDigest}, the release record says ${record.contentDigest}`);
    }
    if (keys.length > 0) verifyArtifactSignature(signature, keys);
  }
  const temp = `${dir}.${process.pid}.tmp`;
  await rm(temp, { recursive: true, force: true });
  for (const entry of readArchive(archive)) {
    assertSafePath(entry.path);
    const file = path.join(temp, entry.path);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, entry.bytes);
  }
  if (signature !== undefined) await writeFile(path.join(temp, SIGNATURE_FILE), `${JSON.stringify(signature, null, 2)}\n`);
  await writeFile(path.join(temp, FETCHED_FILE), `${record.archiveDigest}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
}

/**
 * Each version loaded from the store must give the content digest its release record
 * (and signature) names: a cached folder changed on disk, or an archive whose files do
 * not match its descriptor, is refused instead of running under another digest.
 */
export function assertStoreDigests(registry: AlgorithmRegistry, synced: readonly SyncedVersion[]): void {
  const byDir = new Map(registry.list().map((a) => [a.dir, a]));
  for (const { record, dir } of synced) {
    const loaded = byDir.get(path.resolve(dir));
    if (loaded === undefined) throw new ArteriaError('INTERNAL', `${record.name}@${record.version} was fetched into ${dir} but not loaded`);
    if (loaded.digest !== record.contentDigest) {
      throw new ArteriaError('ARTIFACT_INVALID', `${record.name}@${record.version} in ${dir} gives content digest ${loaded.digest}, its release record says ${record.contentDigest}`);
    }
  }
}
