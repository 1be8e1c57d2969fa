import { createHash } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ArteriaError } from '@arteria/protocol';
import { parseArtifactSignature, type ArtifactSignature } from './artifact-signature.js';
import { parseReleaseRecord, type ReleaseRecord } from './release-record.js';
import { ShadowPlan, ShadowRecord, parseShadow } from './shadow.js';
import { CanaryWithdrawal } from '@arteria/ports';

/** Device inputs live under `<tenant>/`; ids cannot start with '_', so this prefix is Arteria's own. */
export const DEFAULT_STORE_PREFIX = '_algorithms/';

const isMissing = (err: unknown): boolean => {
  const name = (err as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound';
};

function unavailable(what: string, err: unknown): ArteriaError {
  return new ArteriaError('STORAGE_UNAVAILABLE', `artifact store: ${what} failed: ${(err as Error).message}`, { cause: err });
}

const hexOf = (digest: string): string => {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new ArteriaError('ARTIFACT_INVALID', `${digest} is not a sha256:<hex> digest`);
  return digest.slice(7);
};

/**
 * Algorithm artifacts and their release records on any S3 API (the embedded store, MinIO,
 * S3). Archives and their signatures are stored under their own digest and never
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
    private readonly client: S3Client,
    readonly bucket: string,
    readonly prefix: string = DEFAULT_STORE_PREFIX,
  ) {}

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
    if (bytes === undefined) throw new ArteriaError('RELEASE_REFUSED', `artifact ${digest} is not in the store (s3://${this.bucket}/${key})`);
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new ArteriaError('ARTIFACT_INVALID', `the store's copy of artifact ${digest} hashes to ${actual}: it was changed in the bucket`);
    return bytes;
  }

  /** The signature published with the archive, if any. */
  async getSignature(digest: string): Promise<ArtifactSignature | undefined> {
    const key = this.#signatureKey(digest);
    const bytes = await this.#get(key);
    return bytes === undefined ? undefined : parseArtifactSignature(parseJson(bytes, key), `s3://${this.bucket}/${key}`);
  }

  async getRecord(name: string, version: string): Promise<ReleaseRecord | undefined> {
    const key = this.#recordKey(name, version);
    const bytes = await this.#get(key);
    return bytes === undefined ? undefined : parseReleaseRecord(parseJson(bytes, key), `s3://${this.bucket}/${key}`);
  }

  /** Every release record, by name then key order. */
  async listRecords(): Promise<ReleaseRecord[]> {
    return this.#readAll(`${this.prefix}releases/`, parseReleaseRecord);
  }

  async putShadowPlan(plan: ShadowPlan): Promise<void> {
    await this.#put(`${this.prefix}shadows/${plan.name}.json`, Buffer.from(`${JSON.stringify(plan, null, 2)}\n`), 'application/json');
  }

  async deleteShadowPlan(name: string): Promise<void> {
    const key = `${this.prefix}shadows/${name}.json`;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw unavailable(`deleting s3://${this.bucket}/${key}`, err);
    }
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
    for (const key of await this.#keys(prefix)) {
      const bytes = await this.#get(key);
      if (bytes !== undefined) out.push(parse(parseJson(bytes, key), `s3://${this.bucket}/${key}`));
    }
    return out;
  }

  async #keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) })).catch((err: unknown) => {
        throw unavailable(`listing s3://${this.bucket}/${prefix}`, err);
      });
      for (const object of page.Contents ?? []) if (object.Key?.endsWith('.json')) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }

  async #exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw unavailable(`reading s3://${this.bucket}/${key}`, err);
    }
  }

  async #put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength }));
    } catch (err) {
      throw unavailable(`writing s3://${this.bucket}/${key}`, err);
    }
  }

  async #get(key: string): Promise<Buffer | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (response.Body === undefined) return Buffer.alloc(0);
      return Buffer.from(await response.Body.transformToByteArray());
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw unavailable(`reading s3://${this.bucket}/${key}`, err);
    }
  }
}

function parseJson(bytes: Buffer, key: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ArteriaError('ARTIFACT_INVALID', `artifact store: ${key} is not JSON`, { cause: err });
  }
}
