import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { s3Error } from './store-multipart.js';

// s3rver checks the access key of a SigV4 request but never its signature, and serves
// unsigned requests as anonymous ones. This front recomputes every signature with the AWS
// SDK's own signer (@smithy/signature-v4) from the store's secret and refuses what does
// not match: unsigned requests, unknown keys, altered or expired presigned URLs.

/** How far a header-signed request's date may be from the store's clock (as on S3). */
const MAX_SKEW_MS = 15 * 60 * 1000;
/** The longest a presigned URL may live (as on S3). */
const MAX_PRESIGNED_SECONDS = 7 * 24 * 60 * 60;

/** SHA-256 (and HMAC-SHA-256 with a secret) for the signer, over node:crypto. */
class NodeSha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {
    throw new Error('not supported');
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

type SignableRequest = Parameters<SignatureV4['presign']>[0];

/** `20261204T194848Z` → epoch ms; NaN when malformed. */
function parseAmzDate(value: string | undefined): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  return m === null ? Number.NaN : Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

const sameHex = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** `AK/20261204/us-east-1/s3/aws4_request` */
function parseScope(credential: string): { accessKeyId: string; region: string; service: string } | undefined {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') return undefined;
  return { accessKeyId: parts[0] ?? '', region: parts[2] ?? '', service: parts[3] ?? '' };
}

export type Verdict = { ok: true } | { ok: false; code: 'AccessDenied' | 'SignatureDoesNotMatch' | 'InvalidAccessKeyId' | 'RequestTimeTooSkewed'; reason: string };

/** Checks a request's SigV4 signature (Authorization header or presigned query) against `keys` (access key → secret). */
export async function verifySignature(req: IncomingMessage, keys: ReadonlyMap<string, string>, now = Date.now()): Promise<Verdict> {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
  const query: Record<string, string> = {};
  for (const [name, value] of params) query[name] = value;
  const authorization = headerValue(req, 'authorization');
  const presigned = params.has('X-Amz-Signature');
  if (authorization === undefined && !presigned) return { ok: false, code: 'AccessDenied', reason: 'anonymous requests are not served; sign with SigV4' };
  if (authorization !== undefined && presigned) return { ok: false, code: 'AccessDenied', reason: 'one signature per request' };

  let credential: string;
  let signedHeaders: string[];
  let signature: string;
  let signingDate: number;
  if (presigned) {
    if (query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') return { ok: false, code: 'AccessDenied', reason: 'only AWS4-HMAC-SHA256 is accepted' };
    credential = query['X-Amz-Credential'] ?? '';
    signedHeaders = (query['X-Amz-SignedHeaders'] ?? '').split(';');
    signature = query['X-Amz-Signature'] ?? '';
    signingDate = parseAmzDate(query['X-Amz-Date']);
    const expires = Number(query['X-Amz-Expires']);
    if (Number.isNaN(signingDate) || !Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGNED_SECONDS) {
      return { ok: false, code: 'AccessDenied', reason: 'malformed X-Amz-Date or X-Amz-Expires' };
    }
    if (now > signingDate + expires * 1000) return { ok: false, code: 'AccessDenied', reason: 'request has expired' };
    if (signingDate > now + MAX_SKEW_MS) return { ok: false, code: 'AccessDenied', reason: 'request is dated in the future' };
  } else {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(authorization ?? '');
    if (m === null) return { ok: false, code: 'AccessDenied', reason: 'only AWS4-HMAC-SHA256 Authorization headers are accepted' };
    credential = m[1] ?? '';
    signedHeaders = (m[2] ?? '').split(';');
    signature = m[3] ?? '';
    signingDate = parseAmzDate(headerValue(req, 'x-amz-date'));
    if (Number.isNaN(signingDate)) return { ok: false, code: 'AccessDenied', reason: 'missing or malformed x-amz-date' };
    if (Math.abs(now - signingDate) > MAX_SKEW_MS) return { ok: false, code: 'RequestTimeTooSkewed', reason: 'request time too far from the store clock' };
  }
  const scope = parseScope(credential);
  const secret = scope === undefined ? undefined : keys.get(scope.accessKeyId);
  if (scope === undefined || secret === undefined) return { ok: false, code: 'InvalidAccessKeyId', reason: 'unknown access key' };
  if (!signedHeaders.includes('host')) return { ok: false, code: 'AccessDenied', reason: 'the host header must be signed' };

  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = headerValue(req, name);
    if (value === undefined) return { ok: false, code: 'SignatureDoesNotMatch', reason: `signed header ${name} is missing` };
    headers[name] = value;
  }
  const signer = new SignatureV4({ credentials: { accessKeyId: scope.accessKeyId, secretAccessKey: secret }, region: scope.region, service: scope.service, sha256: NodeSha256, uriEscapePath: false });
  const request: SignableRequest = { method: req.method ?? 'GET', protocol: 'http:', hostname: headers.host ?? '', path, query, headers };
  const options = { signingDate: new Date(signingDate), signingRegion: scope.region, signingService: scope.service };
  let expected: string | undefined;
  if (presigned) {
    delete query['X-Amz-Signature'];
    // The payload hash travels in the query (UNSIGNED-PAYLOAD for S3 presigned URLs);
    // the signer reads it from a header, and hoists it back into the query under this name.
    const payloadHash = query['X-Amz-Content-Sha256'];
    delete query['X-Amz-Content-Sha256'];
    if (payloadHash === undefined) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    else headers['X-Amz-Content-Sha256'] = payloadHash;
    const signed = await signer.presign(request, { ...options, expiresIn: Number(query['X-Amz-Expires']), ...(payloadHash === undefined ? { unhoistableHeaders: new Set(['x-amz-content-sha256']), unsignableHeaders: new Set(['x-amz-content-sha256']) } : {}) });
    const value = signed.query?.['X-Amz-Signature'];
    expected = typeof value === 'string' ? value : undefined;
  } else {
    const signed = await signer.sign(request, options);
    const header = signed.headers.authorization ?? signed.headers.Authorization;
    expected = /Signature=([0-9a-f]{64})$/.exec(header ?? '')?.[1];
  }
  if (expected === undefined || !sameHex(expected, signature)) return { ok: false, code: 'SignatureDoesNotMatch', reason: 'the signature does not match' };
  return { ok: true };
}

/** Serves only requests whose signature verifies; answers the rest 403 with an S3 error, without reading their bodies. */
export function withSignatureCheck(
  next: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  keys: ReadonlyMap<string, string>,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const verdict = await verifySignature(req, keys);
    if (verdict.ok) return next(req, res);
    res.setHeader('connection', 'close'); // the refused body is not read; the connection ends with the answer
    s3Error(res, 403, verdict.code, verdict.reason);
  };
}
