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
import { S3RequestPresigner, getSignedUrl } from '@aws-sdk/s3-request-presigner';
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
      const operations = new Set(request.operations);
      // `create` with URLs for the upload it makes: started here, so the device needs one round trip, not two.
      const starts = request.uploadId === undefined && operations.has('create') && ((request.parts?.length ?? 0) > 0 || ['complete', 'list', 'abort'].some((op) => operations.has(op as GrantOperation)));
      const scoped = starts ? { ...request, uploadId: await this.#startUpload(request.key) } : request;
      if (starts) operations.delete('create');
      const urls: GrantAnswerV1['urls'] = {};
      for (const op of operations) urls[op] = await this.#sign(op, scoped);
      const parts = await this.#partUrls(scoped, [...new Set(request.parts ?? [])]);
      return { ...base, expiresAt, ...(starts ? { uploadId: scoped.uploadId } : {}), urls, parts };
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

  /**
   * UploadPart URLs. The first is made by the SDK; the others differ from it only in the
   * part number and are signed from its request, without building an SDK command each
   * (which cost about a millisecond per URL, 64 per grant, on ingest's event loop).
   */
  async #partUrls(request: GrantRequestV1, partNumbers: readonly number[]): Promise<GrantAnswerV1['parts']> {
    const [first, ...rest] = partNumbers;
    if (first === undefined) return [];
    const command = new UploadPartCommand({ Bucket: this.#options.bucket, Key: request.key, UploadId: this.#uploadId(request), PartNumber: first });
    const firstUrl = await getSignedUrl(this.#options.signer, command, this.#signing());
    const parts = [{ partNumber: first, url: firstUrl }];
    if (rest.length === 0) return parts;
    const template = new URL(firstUrl);
    const query = Object.fromEntries([...template.searchParams].filter(([name]) => !name.startsWith('X-Amz-')));
    const presigner = new S3RequestPresigner({ ...this.#options.signer.config });
    for (const partNumber of rest) {
      const signed = await presigner.presign(
        {
          method: 'PUT',
          protocol: template.protocol,
          hostname: template.hostname,
          ...(template.port === '' ? {} : { port: Number(template.port) }),
          path: template.pathname,
          query: { ...query, partNumber: String(partNumber) },
          headers: { host: template.host },
        },
        this.#signing(),
      );
      const url = new URL(template.pathname, template.origin);
      for (const [name, value] of Object.entries(signed.query ?? {})) if (typeof value === 'string') url.searchParams.set(name, value);
      parts.push({ partNumber, url: url.toString() });
    }
    return parts;
  }

  /** CreateMultipartUpload of `key` with the platform's own client; returns the upload id. */
  async #startUpload(key: string): Promise<string> {
    try {
      const created = await (this.#options.store ?? this.#options.signer).send(new CreateMultipartUploadCommand({ Bucket: this.#options.bucket, Key: key, ContentType: 'application/dicom' }));
      if (created.UploadId === undefined) throw new ArteriaError('STORAGE_UNAVAILABLE', 'the store returned no upload id');
      return created.UploadId;
    } catch (err) {
      throw new ArteriaError('GRANT_UNAVAILABLE', `cannot start a multipart upload of ${key}: ${(err as Error).message}`, { cause: err });
    }
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
