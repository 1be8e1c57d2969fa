/**
 * Algorithm artifacts: one immutable archive per algorithm version, named by its own
 * SHA-256. Inside: exactly the files the platform's registry pins (manifest, the entry's
 * folder, the model), the model card, a CycloneDX SBOM, and `artifact.json` stating the
 * content digest every result of this version will name.
 */
import { createHash } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { AlgorithmRegistry, artifactDigest, digestOfFiles, readArchive, writeArchive, type ArchiveEntry, type RegisteredAlgorithm } from '@arteria/worker';
import { buildSbom } from './sbom.js';

export const ARTIFACT_FORMAT = 'arteria-artifact/v1';
export const ARTIFACT_FILE = 'artifact.json';
export const SBOM_FILE = 'sbom.cdx.json';
/** Files that travel for readers but are not part of what runs (outside the content digest). */
const DOCUMENTS = ['MODEL_CARD.md', 'README.md'];

export const ArtifactDescriptor = z.strictObject({
  format: z.literal(ARTIFACT_FORMAT),
  algorithm: z.string(),
  name: z.string(),
  version: z.string(),
  /** The registry's digest over `files`: what every result of this version names. */
  contentDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  /** SHA-256 (hex) of each file that runs, by path. */
  files: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
  sbom: z.literal(SBOM_FILE),
});
export type ArtifactDescriptor = z.infer<typeof ArtifactDescriptor>;

export interface PackOptions {
  dir: string;
  /** Folder the artifact is written into (created if needed). */
  outDir: string;
  tool: { name: string; version: string };
}

export interface PackedArtifact {
  file: string;
  /** `sha256:<hex>` of the archive. */
  digest: string;
  contentDigest: string;
  algorithm: string;
  bytes: number;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Writes `bytes` to `file` only if it is not there: an artifact, once written, never changes. */
async function writeOnce(file: string, bytes: Uint8Array): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, bytes);
  try {
    await link(temp, file);
  } catch (err) {
    // Same name means same digest, so an existing file already holds these bytes.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

export async function packAlgorithm(options: PackOptions): Promise<PackedArtifact> {
  const dir = path.resolve(options.dir);
  const algorithm = (await AlgorithmRegistry.load([dir])).list()[0] as RegisteredAlgorithm;
  const { manifest } = algorithm;
  const entryFolder = path.dirname(path.relative(dir, algorithm.entryPath));
  const modelRel = algorithm.modelPath ? path.relative(dir, algorithm.modelPath) : undefined;
  const { digest: contentDigest, files } = await artifactDigest(dir, { folders: [entryFolder], files: modelRel ? ['manifest.json', modelRel] : ['manifest.json'] });
  if (contentDigest !== algorithm.digest) throw new ArteriaError('INTERNAL', `${dir} changed while it was being packed`);

  const entries: ArchiveEntry[] = [];
  for (const rel of files.keys()) entries.push({ path: rel, bytes: new Uint8Array(await readFile(path.join(dir, rel))) });
  const contentFiles = new Map(entries.map((e) => [e.path, e.bytes]));
  // Read files again for the archive: a file changed since hashing must not slip in.
  if (digestOfFiles(contentFiles) !== contentDigest) throw new ArteriaError('INTERNAL', `${dir} changed while it was being packed`);
  for (const doc of DOCUMENTS) {
    if (files.has(doc)) continue;
    const bytes = await readFile(path.join(dir, doc)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    if (bytes) entries.push({ path: doc, bytes: new Uint8Array(bytes) });
  }
  const label = `${manifest.name}@${manifest.version}`;
  const sbom = await buildSbom({
    dir,
    name: manifest.name,
    version: manifest.version,
    contentDigest,
    tool: options.tool,
    ...(manifest.model && modelRel ? { model: { name: manifest.model.name, sha256: manifest.model.sha256, file: modelRel.split(path.sep).join('/') } } : {}),
  });
  const descriptor: ArtifactDescriptor = { format: ARTIFACT_FORMAT, algorithm: label, name: manifest.name, version: manifest.version, contentDigest, files: Object.fromEntries(files), sbom: SBOM_FILE };
  entries.push({ path: SBOM_FILE, bytes: Buffer.from(`${JSON.stringify(sbom, null, 2)}\n`) });
  entries.push({ path: ARTIFACT_FILE, bytes: Buffer.from(`${JSON.stringify(descriptor, null, 2)}\n`) });

  const archive = writeArchive(entries);
  const hex = sha256(archive);
  await mkdir(options.outDir, { recursive: true });
  const file = path.join(path.resolve(options.outDir), `${manifest.name}-${manifest.version}-sha256-${hex}.tar`);
  await writeOnce(file, archive);
  return { file, digest: `sha256:${hex}`, contentDigest, algorithm: label, bytes: archive.length };
}

export interface OpenedArtifact {
  digest: string;
  descriptor: ArtifactDescriptor;
  entries: ArchiveEntry[];
}

/**
 * Reads an artifact and checks it is whole: its descriptor parses, every file that runs
 * is there with the stated SHA-256, and together they give the stated content digest.
 * Says nothing about who made it (that is the signature's job).
 */
export async function openArtifact(file: string): Promise<OpenedArtifact> {
  let archive: Buffer;
  try {
    archive = await readFile(file);
  } catch (err) {
    throw new ArteriaError('ARTIFACT_INVALID', `${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const entries = readArchive(archive);
  const byPath = new Map(entries.map((e) => [e.path, e.bytes]));
  const raw = byPath.get(ARTIFACT_FILE);
  if (!raw) throw new ArteriaError('ARTIFACT_INVALID', `${file} has no ${ARTIFACT_FILE}: not an Arteria artifact`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (err) {
    throw new ArteriaError('ARTIFACT_INVALID', `${file}: ${ARTIFACT_FILE} is not JSON`, { cause: err });
  }
  const parsed = ArtifactDescriptor.safeParse(json);
  if (!parsed.success) throw new ArteriaError('ARTIFACT_INVALID', `${file}: ${ARTIFACT_FILE} ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  const descriptor = parsed.data;
  const content = new Map<string, Uint8Array>();
  for (const [rel, hex] of Object.entries(descriptor.files)) {
    const bytes = byPath.get(rel);
    if (!bytes) throw new ArteriaError('ARTIFACT_INVALID', `${file}: ${rel} is listed but missing`);
    if (sha256(bytes) !== hex) throw new ArteriaError('ARTIFACT_INVALID', `${file}: ${rel} does not hash to what ${ARTIFACT_FILE} states: the artifact was altered`);
    content.set(rel, bytes);
  }
  if (digestOfFiles(content) !== descriptor.contentDigest) throw new ArteriaError('ARTIFACT_INVALID', `${file}: its files do not give the stated content digest: the artifact was altered`);
  return { digest: `sha256:${sha256(archive)}`, descriptor, entries };
}
