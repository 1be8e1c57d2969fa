import { createHash } from 'node:crypto';
import { ArteriaError } from '@arteria/protocol';
import { parseArtifactSignature, type ArtifactSignature } from './artifact-signature.js';
import { parseReleaseRecord, type ReleaseRecord } from './release-record.js';
import { ShadowPlan, ShadowRecord, parseShadow } from './shadow.js';
import { CanaryWithdrawal, type ObjectBucket } from '@arteria/ports';

/** Device inputs live under `<tenant>/`; ids cannot start with '_', so this prefix is Arteria's own. */
export const DEFAULT_STORE_PREFIX = '_algorithms/';

const hexOf = (digest: string): string => {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new ArteriaError('ARTIFACT_INVALID', `${digest} is not a sha256:<hex> digest`);
  return digest.slice(7);
};

/**
 * Algorithm artifacts and their release records in an object bucket (the ObjectBucket port:
 * the S3 engine's `s3ObjectBucket` on the embedded store, MinIO or S3). Archives and their signatures are stored under their own digest and never
 * rewritten; a release record per version says which digest it is and its stage:
 *
 *   {prefix}artifacts/sha256/<hex>.tar, <hex>.sig.json
 *   {prefix}releases/<name>/<version>.json
 *   {prefix}shadows/<name>.json                     (the shadow plan of an algorithm)
 *   {prefix}shadow-runs/<name>/<requestId>.json     (one per shadow run)
 *   {prefix}canary-withdrawals/<tenant>/<name>@<version>.json
 *
 * Everything read back is checked: an archive against the digest it is stored under, a
 * signature and a record against their schemas. Who vouches for them is the reader's check.
 */
export class ArtifactStore {
  constructor(
    private readonly objects: ObjectBucket,
    readonly prefix: string = DEFAULT_STORE_PREFIX,
  ) {}

  /** Where the store lives, for messages (`s3://bucket/prefix`). */
  get location(): string {
    return `${this.objects.location}/${this.prefix}`;
  }

  #archiveKey = (digest: string): string => `${this.prefix}artifacts/sha256/${hexOf(digest)}.tar`;
  #signatureKey = (digest: string): string => `${this.prefix}artifacts/sha256/${hexOf(digest)}.sig.json`;
  #recordKey = (name: string, version: string): string => `${this.prefix}releases/${name}/${version}.json`;

  /** Stores an archive under its digest; one already there is left as it is (same digest, same bytes). */
  async putArchive(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new ArteriaError('ARTIFACT_INVALID', `the archive hashes to ${actual}, not ${digest}`);
    const key = this.#archiveKey(digest);
    if (await this.#exists(key)) return;
    await this.#put(key, bytes, 'application/x-tar');
  }

  async putSignature(signature: ArtifactSignature): Promise<void> {
    await this.#put(this.#signatureKey(signature.archiveDigest), Buffer.from(`${JSON.stringify(signature, null, 2)}\n`), 'application/json');
  }

  async putRecord(record: ReleaseRecord): Promise<void> {
    await this.#put(this.#recordKey(record.name, record.version), Buffer.from(`${JSON.stringify(record, null, 2)}\n`), 'application/json');
  }

  /** The archive stored under `digest`, checked against it (ARTIFACT_INVALID for a changed copy). */
  async getArchive(digest: string): Promise<Buffer> {
    const key = this.#archiveKey(digest);
    const bytes = await this.#get(key);
    if (bytes === undefined) throw new ArteriaError('RELEASE_REFUSED', `artifact ${digest} is not in the store (${this.objects.location}/${key})`);
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new ArteriaError('ARTIFACT_INVALID', `the store's copy of artifact ${digest} hashes to ${actual}: it was changed in the bucket`);
    return bytes;
  }

  /** The signature published with the archive, if any. */
  async getSignature(digest: string): Promise<ArtifactSignature | undefined> {
    const key = this.#signatureKey(digest);
    const bytes = await this.#get(key);
    return bytes === undefined ? undefined : parseArtifactSignature(parseJson(bytes, key), `${this.objects.location}/${key}`);
  }

  async getRecord(name: string, version: string): Promise<ReleaseRecord | undefined> {
    const key = this.#recordKey(name, version);
    const bytes = await this.#get(key);
    return bytes === undefined ? undefined : parseReleaseRecord(parseJson(bytes, key), `${this.objects.location}/${key}`);
  }

  /** Every release record, by name then key order. */
  async listRecords(): Promise<ReleaseRecord[]> {
    return this.#readAll(`${this.prefix}releases/`, parseReleaseRecord);
  }

  async putShadowPlan(plan: ShadowPlan): Promise<void> {
    await this.#put(`${this.prefix}shadows/${plan.name}.json`, Buffer.from(`${JSON.stringify(plan, null, 2)}\n`), 'application/json');
  }

  async deleteShadowPlan(name: string): Promise<void> {
    await this.objects.delete(`${this.prefix}shadows/${name}.json`);
  }

  /** Every algorithm's shadow plan. */
  async listShadowPlans(): Promise<ShadowPlan[]> {
    return this.#readAll(`${this.prefix}shadows/`, (json, source) => parseShadow(ShadowPlan, json, source));
  }

  async putShadowRecord(record: ShadowRecord, name: string): Promise<void> {
    await this.#put(`${this.prefix}shadow-runs/${name}/${record.requestId}.json`, Buffer.from(JSON.stringify(record)), 'application/json');
  }

  /** Every recorded shadow run of `name`. */
  async listShadowRecords(name: string): Promise<ShadowRecord[]> {
    return this.#readAll(`${this.prefix}shadow-runs/${name}/`, (json, source) => parseShadow(ShadowRecord, json, source));
  }

  async putWithdrawal(withdrawal: CanaryWithdrawal): Promise<void> {
    await this.#put(`${this.prefix}canary-withdrawals/${withdrawal.tenant}/${withdrawal.algorithm}@${withdrawal.version}.json`, Buffer.from(`${JSON.stringify(withdrawal, null, 2)}\n`), 'application/json');
  }

  /** Every canary withdrawn automatically, by tenant. */
  async listWithdrawals(): Promise<CanaryWithdrawal[]> {
    return this.#readAll(`${this.prefix}canary-withdrawals/`, (json, source) => parseShadow(CanaryWithdrawal, json, source));
  }

  async #readAll<T>(prefix: string, parse: (json: unknown, source: string) => T): Promise<T[]> {
    const out: T[] = [];
    for (const key of await this.objects.list(prefix, '.json')) {
      const bytes = await this.objects.get(key);
      if (bytes !== undefined) out.push(parse(parseJson(bytes, key), `${this.objects.location}/${key}`));
    }
    return out;
  }

  #exists(key: string): Promise<boolean> {
    return this.objects.exists(key);
  }

  #put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    return this.objects.put(key, body, contentType);
  }

  #get(key: string): Promise<Buffer | undefined> {
    return this.objects.get(key);
  }
}

function parseJson(bytes: Buffer, key: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ArteriaError('ARTIFACT_INVALID', `artifact store: ${key} is not JSON`, { cause: err });
  }
}
