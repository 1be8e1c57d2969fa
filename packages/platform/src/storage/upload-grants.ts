import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ArteriaError, epochNow, toArteriaError, type DeviceAddress, type GrantAnswerV1, type GrantOperation, type GrantRequestV1 } from '@arteria/protocol';

export interface UploadGrantOptions {
  /**
   * Signs with this client's credentials, for this client's endpoint: the address devices
   * reach the store at (the host is part of the signature). The platform role that serves
   * grants holds these credentials; devices never see them.
   */
  signer: S3Client;
  /** Checks whether an object is already stored (the platform's own client; default `signer`). */
  store?: S3Client;
  bucket: string;
  /** How long a grant's URLs are valid (default 5 minutes). */
  ttlMs?: number;
  now?: () => number;
}

/** Key segments a grant may name: no empty, `.` or `..` segment, nothing the store would read as a path trick. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const WRITES: readonly GrantOperation[] = ['put', 'create', 'complete'];

/**
 * Issues short-lived, per-object upload grants: presigned URLs for exactly one key under
 * the asking device's own prefix `{tenant}/{device}/`. A grant can write a new object
 * (whole, or by a multipart upload of that key) and read its size and ETag; it can never
 * list, read bytes, or replace an object already stored.
 */
export class UploadGrantIssuer {
  readonly #options: UploadGrantOptions;
  readonly #ttlSeconds: number;
  readonly #now: () => number;

  constructor(options: UploadGrantOptions) {
    this.#options = options;
    this.#ttlSeconds = Math.max(1, Math.round((options.ttlMs ?? 5 * 60 * 1000) / 1000));
    this.#now = options.now ?? epochNow;
  }

  /** The answer to `request` from `from`: URLs, or a typed refusal (never throws for a refusal). */
  async issue(from: DeviceAddress, request: GrantRequestV1): Promise<GrantAnswerV1> {
    const base = { v: 1 as const, kind: 'grant-answer' as const, grantId: request.id, tenant: from.tenant, device: from.device, key: request.key };
    try {
      this.#checkScope(from, request);
      const expiresAt = this.#now() + this.#ttlSeconds * 1000;
      const wantsWrite = request.operations.some((op) => WRITES.includes(op)) || (request.parts?.length ?? 0) > 0;
      if (wantsWrite && (await this.#stored(request.key))) {
        throw new ArteriaError('OBJECT_EXISTS', `${request.key} is already stored; objects are written once`);
      }
      const urls: GrantAnswerV1['urls'] = {};
      for (const op of new Set(request.operations)) urls[op] = await this.#sign(op, request);
      const parts: GrantAnswerV1['parts'] = [];
      for (const partNumber of new Set(request.parts ?? [])) {
        parts.push({ partNumber, url: await getSignedUrl(this.#options.signer, new UploadPartCommand({ Bucket: this.#options.bucket, Key: request.key, UploadId: this.#uploadId(request), PartNumber: partNumber }), this.#signing()) });
      }
      return { ...base, expiresAt, urls, parts };
    } catch (err) {
      const error = toArteriaError(err, 'GRANT_UNAVAILABLE');
      return { ...base, expiresAt: 0, urls: {}, parts: [], error: { code: error.code, message: error.message.slice(0, 2000) } };
    }
  }

  #checkScope(from: DeviceAddress, request: GrantRequestV1): void {
    const segments = request.key.split('/');
    const [tenant, device, ...rest] = segments;
    if (tenant !== from.tenant || device !== from.device || rest.length === 0 || !rest.every((s) => SEGMENT.test(s))) {
      throw new ArteriaError('NOT_AUTHORIZED', `device ${from.tenant}/${from.device} may only write objects under ${from.tenant}/${from.device}/ (asked for ${request.key.slice(0, 200)})`);
    }
  }

  #uploadId(request: GrantRequestV1): string {
    if (request.uploadId === undefined) throw new ArteriaError('INVALID_REQUEST', 'list, complete, abort and part URLs need an uploadId');
    return request.uploadId;
  }

  async #stored(key: string): Promise<boolean> {
    try {
      await (this.#options.store ?? this.#options.signer).send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: key }));
      return true;
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NotFound' || name === 'NoSuchKey') return false;
      throw new ArteriaError('GRANT_UNAVAILABLE', `cannot check ${key} in the object store: ${(err as Error).message}`, { cause: err });
    }
  }

  #sign(op: GrantOperation, request: GrantRequestV1): Promise<string> {
    const Bucket = this.#options.bucket;
    const Key = request.key;
    switch (op) {
      case 'put':
        return getSignedUrl(this.#options.signer, new PutObjectCommand({ Bucket, Key, ContentType: 'application/dicom' }), this.#signing());
      case 'create':
        return getSignedUrl(this.#options.signer, new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/dicom' }), this.#signing());
      case 'head':
        return getSignedUrl(this.#options.signer, new HeadObjectCommand({ Bucket, Key }), this.#signing());
      case 'list':
        return getSignedUrl(this.#options.signer, new ListPartsCommand({ Bucket, Key, UploadId: this.#uploadId(request), MaxParts: 1000, PartNumberMarker: request.partNumberMarker === undefined ? undefined : String(request.partNumberMarker) }), this.#signing());
      case 'complete':
        // The part list (the body) is the device's own; its length is not bound to the URL.
        return getSignedUrl(this.#options.signer, new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: this.#uploadId(request), MultipartUpload: { Parts: [] } }), this.#signing(true));
      case 'abort':
        return getSignedUrl(this.#options.signer, new AbortMultipartUploadCommand({ Bucket, Key, UploadId: this.#uploadId(request) }), this.#signing());
    }
  }

  /** `bodyUnbound`: the body's length and type stay out of the signature. */
  #signing(bodyUnbound = false): { expiresIn: number; unsignableHeaders?: Set<string> } {
    return { expiresIn: this.#ttlSeconds, ...(bodyUnbound ? { unsignableHeaders: new Set(['content-length', 'content-type']) } : {}) };
  }
}
