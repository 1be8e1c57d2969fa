import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ArteriaError, type AlgorithmRef } from '@arteria/protocol';
import { AlgorithmManifest } from '@arteria/sdk';
import { artifactDigest } from './digest.js';
import { SIGNATURE_FILE, parseArtifactSignature, verifyArtifactSignature, type ArtifactTrust } from './artifact-signature.js';

/** One loaded algorithm version, pinned to the digest of its artifact. */
export interface RegisteredAlgorithm {
  readonly manifest: AlgorithmManifest;
  /** `sha256:<hex>` over the manifest, the entry's folder and the model file. */
  readonly digest: string;
  /** Absolute folder holding manifest.json. */
  readonly dir: string;
  /** Absolute path of the built entry module. */
  readonly entryPath: string;
  /** Absolute path of the model file, when the manifest names one. */
  readonly modelPath: string | undefined;
  /** What results name: exact version, artifact digest, model identity. */
  readonly ref: AlgorithmRef;
  /** Id of the trusted key whose signature covers this version; undefined: unsigned (or no keys are trusted). */
  readonly signedBy: string | undefined;
}

export interface RegistryLoadOptions {
  /** Keys whose artifact signatures are accepted and whether unsigned versions are refused. */
  trust?: ArtifactTrust;
}

export interface ResolveOptions {
  /** Only versions with a trusted signature (a tenant that requires them); ARTIFACT_UNSIGNED when only unsigned ones match. */
  signedOnly?: boolean;
}

function configError(dir: string, message: string, cause?: unknown): ArteriaError {
  return new ArteriaError('CONFIG_INVALID', `algorithm in ${dir}: ${message}`, { cause });
}

/** `rel` resolved inside `dir`; paths that climb out of the algorithm's folder are refused. */
function inside(dir: string, rel: string, field: string): string {
  const abs = path.resolve(dir, rel);
  const back = path.relative(dir, abs);
  if (back.startsWith('..') || path.isAbsolute(back)) throw configError(dir, `${field} "${rel}" points outside the algorithm folder`);
  return abs;
}

async function requireFile(dir: string, abs: string, field: string): Promise<void> {
  const info = await stat(abs).catch((err: unknown) => {
    throw configError(dir, `${field} file ${abs} cannot be read`, err);
  });
  if (!info.isFile()) throw configError(dir, `${field} ${abs} is not a file`);
}

async function readManifest(dir: string): Promise<AlgorithmManifest> {
  const file = path.join(dir, 'manifest.json');
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw configError(dir, 'manifest.json cannot be read', err);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw configError(dir, `manifest.json is not JSON: ${(err as Error).message}`, err);
  }
  const parsed = AlgorithmManifest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw configError(dir, `manifest.json field ${field}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/**
 * The key that signed the version in `dir`, checked against its content digest; undefined
 * when it carries no signature or nothing is trusted. A signature that does not verify
 * refuses the version whatever the policy: it is a claim about these files that is false.
 */
async function checkSignature(dir: string, label: string, digest: string, trust: ArtifactTrust | undefined): Promise<string | undefined> {
  const file = path.join(dir, SIGNATURE_FILE);
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw configError(dir, `${SIGNATURE_FILE} cannot be read`, err);
  });
  if (text === undefined || trust === undefined || trust.publicKeys.length === 0) {
    if (trust?.requireSignatures) {
      const why = text === undefined ? `it has no ${SIGNATURE_FILE}` : 'no signing key is trusted';
      throw new ArteriaError('ARTIFACT_UNSIGNED', `${label} in ${dir} is refused: signatures are required and ${why}`);
    }
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label} in ${dir}: ${SIGNATURE_FILE} is not JSON`, { cause: err });
  }
  const signature = parseArtifactSignature(json, path.join(dir, SIGNATURE_FILE));
  const keyId = verifyArtifactSignature(signature, trust.publicKeys);
  if (signature.algorithm !== label) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${dir}: the signature is for ${signature.algorithm}, the manifest says ${label}`);
  }
  if (signature.contentDigest !== digest) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label} in ${dir}: its files changed after signing (signed ${signature.contentDigest}, found ${digest})`);
  }
  return keyId;
}

async function loadOne(dirArg: string, schemaChecker: Ajv2020, trust: ArtifactTrust | undefined): Promise<RegisteredAlgorithm> {
  const dir = path.resolve(dirArg);
  const manifest = await readManifest(dir);
  if (manifest.input.minFrames > manifest.input.maxFrames) throw configError(dir, 'manifest.json field input: minFrames exceeds maxFrames');
  if (!schemaChecker.validateSchema(manifest.outputSchema)) {
    throw configError(dir, `manifest.json field outputSchema is not a JSON Schema: ${schemaChecker.errorsText(schemaChecker.errors)}`);
  }
  const entryPath = inside(dir, manifest.entry, 'entry');
  await requireFile(dir, entryPath, 'entry');
  const modelPath = manifest.model ? inside(dir, manifest.model.file, 'model.file') : undefined;
  if (modelPath) await requireFile(dir, modelPath, 'model.file');

  const entryFolder = path.dirname(path.relative(dir, entryPath));
  const modelRel = modelPath ? path.relative(dir, modelPath) : undefined;
  const { digest, files } = await artifactDigest(dir, {
    folders: [entryFolder],
    files: modelRel ? ['manifest.json', modelRel] : ['manifest.json'],
  });

  const ref: AlgorithmRef = { name: manifest.name, version: manifest.version, digest };
  if (manifest.model && modelRel) {
    const actual = files.get(modelRel.split(path.sep).join('/'));
    if (actual !== manifest.model.sha256) {
      throw configError(dir, `manifest.json field model.sha256 does not match ${manifest.model.file} (file hashes to ${actual ?? 'nothing'})`);
    }
    ref.model = { name: manifest.model.name, digest: `sha256:${manifest.model.sha256}` };
  }
  const signedBy = await checkSignature(dir, `${manifest.name}@${manifest.version}`, digest, trust);
  return Object.freeze({ manifest, digest, dir, entryPath, modelPath, ref, signedBy });
}

const byNameThenVersion = (a: RegisteredAlgorithm, b: RegisteredAlgorithm): number =>
  a.manifest.name < b.manifest.name ? -1 : a.manifest.name > b.manifest.name ? 1 : semver.compare(a.manifest.version, b.manifest.version);

/**
 * The algorithm versions this platform can run. Several versions of one algorithm live
 * side by side; a request's `name@range` resolves to the highest matching version.
 */
export class AlgorithmRegistry {
  private readonly byName: ReadonlyMap<string, readonly RegisteredAlgorithm[]>;

  private constructor(algorithms: readonly RegisteredAlgorithm[]) {
    const byName = new Map<string, RegisteredAlgorithm[]>();
    for (const algorithm of [...algorithms].sort(byNameThenVersion)) {
      const versions = byName.get(algorithm.manifest.name) ?? [];
      versions.push(algorithm);
      byName.set(algorithm.manifest.name, versions);
    }
    this.byName = byName;
  }

  /**
   * Reads and pins each folder (manifest.json plus built entry); any invalid folder fails
   * the load, and so does a bad signature, or a missing one when `trust` requires them.
   */
  static async load(dirs: readonly string[], options: RegistryLoadOptions = {}): Promise<AlgorithmRegistry> {
    const schemaChecker = new Ajv2020({ strict: false });
    const loaded: RegisteredAlgorithm[] = [];
    const seen = new Map<string, string>();
    for (const dir of dirs) {
      const algorithm = await loadOne(dir, schemaChecker, options.trust);
      const key = `${algorithm.manifest.name}@${algorithm.manifest.version}`;
      const other = seen.get(key);
      if (other !== undefined) throw configError(algorithm.dir, `${key} is also registered from ${other}`);
      seen.set(key, algorithm.dir);
      loaded.push(algorithm);
    }
    return new AlgorithmRegistry(loaded);
  }

  /** Every loaded version, by name then version. */
  list(): RegisteredAlgorithm[] {
    return [...this.byName.values()].flat();
  }

  /**
   * The highest version matching `name@range` (a bare name means any version) and, when
   * `enabled` is given, one of those ranges: the versions this device may run.
   */
  resolve(spec: string, enabled?: readonly string[], options: ResolveOptions = {}): RegisteredAlgorithm {
    const at = spec.indexOf('@');
    const name = at < 0 ? spec : spec.slice(0, at);
    const range = at < 0 ? '*' : spec.slice(at + 1);
    const versions = this.byName.get(name);
    if (!versions) {
      const known = [...this.byName.keys()].join(', ') || 'none';
      throw new ArteriaError('UNKNOWN_ALGORITHM', `no algorithm named "${name}" is registered (registered: ${known})`);
    }
    const matching = versions.filter((v) => semver.satisfies(v.manifest.version, range));
    if (matching.length === 0) {
      const known = versions.map((v) => v.manifest.version).join(', ');
      throw new ArteriaError('UNKNOWN_ALGORITHM', `no version of ${name} matches "${range}" (registered: ${known})`);
    }
    const allowed = enabled === undefined ? matching : matching.filter((v) => enabled.some((r) => semver.satisfies(v.manifest.version, r)));
    const match = allowed.at(-1); // versions are kept in ascending order
    if (!match) {
      const what = enabled === undefined || enabled.length === 0 ? 'no version is enabled here' : `enabled here: ${name}@${enabled.join(` or ${name}@`)}`;
      throw new ArteriaError('ALGORITHM_NOT_ENABLED', `${name}@${range} matches ${matching.map((v) => v.manifest.version).join(', ')}, but ${what}`);
    }
    if (!options.signedOnly) return match;
    const signed = allowed.filter((v) => v.signedBy !== undefined).at(-1);
    if (!signed) {
      throw new ArteriaError('ARTIFACT_UNSIGNED', `${name}@${range}: this tenant runs only signed algorithms, and ${allowed.map((v) => v.manifest.version).join(', ')} carry no trusted signature`);
    }
    return signed;
  }
}
