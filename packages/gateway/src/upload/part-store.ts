import { ArteriaError } from '@arteria/protocol';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { UrlNeed, UrlSource } from './granted-urls.js';

export interface StoredPart {
  partNumber: number;
  size: number;
  /** As the store reports it, without quotes. */
  etag: string;
}

export interface OpenUpload {
  key: string;
  uploadId: string;
  /** Epoch ms; undefined when the store does not say. */
  initiatedAt: number | undefined;
}

/**
 * The object-store operations an upload needs, whoever holds the keys: the gateway
 * itself (an S3 client with credentials) or the platform (short-lived grants).
 * Errors are thrown as the transport reports them; `uploadRun` types them.
 */
export interface PartStore {
  /** `s3://bucket` prefix of every URI this store writes. */
  readonly bucket: string;
  /** Returns the object's ETag (without quotes) when the store gives one. */
  putObject(key: string, body: Buffer, signal: AbortSignal): Promise<string | undefined>;
  /** A PutObject of `key` will follow soon: a granted store asks for its URL now, so the PUT does not wait for a grant round trip. */
  preparePut?(key: string, signal: AbortSignal): void;
  /** Starts a multipart upload; `parts`: those it will send, in order (a granted store gets their first URLs with it). */
  createUpload(key: string, signal: AbortSignal, parts?: readonly number[]): Promise<string>;
  /** Every part the store holds, all pages read; undefined when the upload no longer exists. */
  listParts(key: string, uploadId: string, signal: AbortSignal): Promise<StoredPart[] | undefined>;
  /** The parts an upload is about to send, in sending order (lets a granted store ask for their URLs ahead). */
  planParts?(key: string, uploadId: string, partNumbers: readonly number[], signal: AbortSignal): void;
  /** Returns the part's ETag (without quotes). */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string>;
  /** Returns the object's ETag (without quotes) when the store gives one. */
  completeUpload(key: string, uploadId: string, parts: readonly { partNumber: number; etag: string }[], signal: AbortSignal): Promise<string | undefined>;
  /** Aborts an upload; an upload already gone is not an error. */
  abortUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void>;
  head(key: string, signal: AbortSignal): Promise<{ size: number; etag: string | undefined } | undefined>;
  /** Multipart uploads in progress under a prefix, all pages read (absent where the store's grants do not allow listing). */
  listUploads?(prefix: string, signal?: AbortSignal): Promise<OpenUpload[]>;
}

const unquote = (etag: string | undefined): string | undefined => etag?.replace(/"/g, '');
const errorName = (err: unknown): string | undefined => (err as { name?: string }).name;
const isGone = (err: unknown): boolean => errorName(err) === 'NoSuchUpload';

/** What the SDK builds and sends for a command, as far as a presigned URL replaces it. */
interface OutgoingRequest {
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

/**
 * Makes `command` carry a presigned URL's path, query and host instead of the client's own
 * signature (same method, headers and body). The connection still goes to the gateway's
 * configured endpoint (through the site proxy where there is one), never to an address
 * that came over MQTT; the signed Host header is the URL's.
 */
function sendTo<C extends { middlewareStack: { add(m: unknown, o: unknown): void } }>(command: C, url: string): C {
  const target = new URL(url);
  // Before signing: the SDK would otherwise hash every body it sends for a signature that is thrown away.
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      (args.request as OutgoingRequest).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'arteriaUnsignedPayload' },
  );
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      const request = args.request as OutgoingRequest;
      request.path = target.pathname;
      request.query = Object.fromEntries(target.searchParams);
      // The URL carries the signature; the client's own (made with placeholder credentials) goes.
      for (const name of Object.keys(request.headers)) {
        if (/^(authorization|x-amz-date|x-amz-content-sha256|x-amz-security-token)$/i.test(name)) delete request.headers[name];
      }
      request.headers.host = target.host;
      return next(args);
    },
    // Innermost: after signing, right before the request is sent (retries go through it too).
    { step: 'deserialize', priority: 'low', name: 'arteriaPresignedUrl' },
  );
  return command;
}

/**
 * A PartStore over an S3 client: with credentials (S3, MinIO, the embedded store; a
 * development mode), or, given `urls`, over presigned URLs from upload grants, where the
 * client's credentials are placeholders that sign nothing the store accepts. Listing
 * uploads needs credentials: a granted store has no listUploads.
 */
export function s3PartStore(client: S3Client, bucket: string, options: { listPageSize?: number; urls?: UrlSource } = {}): PartStore {
  const pageSize = options.listPageSize ?? 1000;
  const Bucket = bucket;
  const { urls } = options;
  const via = async <C extends { middlewareStack: { add(m: unknown, o: unknown): void } }>(command: C, need: UrlNeed, signal?: AbortSignal): Promise<C> =>
    urls === undefined ? command : sendTo(command, await urls.url(need, signal));
  const store: PartStore = {
    bucket,
    async putObject(key, body, signal) {
      const put = await client.send(await via(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: 'application/dicom' }), { op: 'put', key }, signal), { abortSignal: signal });
      return unquote(put.ETag);
    },
    preparePut(key, signal) {
      urls?.prefetch?.({ op: 'put', key }, signal);
    },
    planParts(key, uploadId, partNumbers, signal) {
      urls?.plan?.(key, uploadId, partNumbers, signal);
    },
    async createUpload(key, signal, parts) {
      const started = parts === undefined ? undefined : await urls?.startUpload?.(key, parts, signal);
      if (started !== undefined) return started;
      const created = await client.send(await via(new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: 'application/dicom' }), { op: 'create', key }, signal), { abortSignal: signal });
      if (created.UploadId === undefined) throw new ArteriaError('STORAGE_UNAVAILABLE', `the store returned no upload id for ${key}`);
      return created.UploadId;
    },
    async listParts(key, uploadId, signal) {
      const parts: StoredPart[] = [];
      let marker: string | undefined;
      for (;;) {
        let page;
        try {
          const list = new ListPartsCommand({ Bucket, Key: key, UploadId: uploadId, MaxParts: pageSize, PartNumberMarker: marker });
          page = await client.send(await via(list, { op: 'list', key, uploadId, ...(marker === undefined ? {} : { partNumberMarker: Number(marker) }) }, signal), { abortSignal: signal });
        } catch (err) {
          if (isGone(err)) return undefined;
          throw err;
        }
        for (const part of page.Parts ?? []) {
          const etag = unquote(part.ETag);
          if (part.PartNumber !== undefined && part.Size !== undefined && etag !== undefined) parts.push({ partNumber: part.PartNumber, size: part.Size, etag });
        }
        if (page.IsTruncated !== true || page.NextPartNumberMarker === undefined || page.NextPartNumberMarker === marker) return parts;
        marker = page.NextPartNumberMarker;
      }
    },
    async uploadPart(key, uploadId, partNumber, body, signal) {
      const part = new UploadPartCommand({ Bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body });
      const sent = await client.send(await via(part, { op: 'part', key, uploadId, partNumber }, signal), { abortSignal: signal });
      const etag = unquote(sent.ETag);
      if (etag === undefined) throw new ArteriaError('STORAGE_UNAVAILABLE', `the store returned no ETag for part ${partNumber} of ${key}`);
      return etag;
    },
    async completeUpload(key, uploadId, parts, signal) {
      const complete = new CompleteMultipartUploadCommand({
        Bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
      });
      const done = await client.send(await via(complete, { op: 'complete', key, uploadId }, signal), { abortSignal: signal });
      urls?.forget?.(key, uploadId);
      return unquote(done.ETag);
    },
    async abortUpload(key, uploadId, signal) {
      try {
        await client.send(await via(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }), { op: 'abort', key, uploadId }, signal), { abortSignal: signal });
      } catch (err) {
        if (!isGone(err)) throw err;
      }
      urls?.forget?.(key, uploadId);
    },
    async head(key, signal) {
      try {
        const head = await client.send(await via(new HeadObjectCommand({ Bucket, Key: key }), { op: 'head', key }, signal), { abortSignal: signal });
        return { size: head.ContentLength ?? -1, etag: unquote(head.ETag) };
      } catch (err) {
        if (errorName(err) === 'NotFound' || errorName(err) === 'NoSuchKey') return undefined;
        throw err;
      }
    },
  };
  if (urls !== undefined) return store;
  return {
    ...store,
    async listUploads(prefix, signal) {
      const uploads: OpenUpload[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const page = await client.send(
          new ListMultipartUploadsCommand({ Bucket, Prefix: prefix, MaxUploads: pageSize, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
          { abortSignal: signal },
        );
        for (const upload of page.Uploads ?? []) {
          if (upload.Key === undefined || upload.UploadId === undefined) continue;
          uploads.push({ key: upload.Key, uploadId: upload.UploadId, initiatedAt: upload.Initiated?.getTime() });
        }
        if (page.IsTruncated !== true || page.NextKeyMarker === undefined) return uploads;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
    },
  };
}
