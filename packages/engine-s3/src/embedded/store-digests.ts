import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

// The embedded store's digests of a body it receives (PutObject, UploadPart): the SHA-256,
// which is the ETag, and an MD5 only where the client sent a Content-MD5 to check. What the
// client declares for the body is checked against them as S3 checks it.

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

/** What a request declares for its body. */
interface Declared {
  md5?: string;
  sha256?: string;
  payloadSha256?: string;
}

export interface BodyDigests {
  update(chunk: Buffer): void;
  /** After the last chunk: the ETag (hex SHA-256), or S3's refusal when the body is not what was declared. */
  finish(): { etag: string; refusal?: undefined } | { etag?: undefined; refusal: { code: string; message: string } };
  /** The checksum to give back (x-amz-checksum-sha256), when the client sent one. */
  readonly checksumSha256: string | undefined;
}

export function bodyDigests(req: IncomingMessage): BodyDigests {
  const payload = header(req, 'x-amz-content-sha256')?.toLowerCase();
  const claims: Declared = {
    ...(header(req, 'content-md5') === undefined ? {} : { md5: header(req, 'content-md5') }),
    ...(header(req, 'x-amz-checksum-sha256') === undefined ? {} : { sha256: header(req, 'x-amz-checksum-sha256') }),
    // UNSIGNED-PAYLOAD and the streaming forms name no digest of the body.
    ...(payload !== undefined && /^[0-9a-f]{64}$/.test(payload) ? { payloadSha256: payload } : {}),
  };
  const sha256 = createHash('sha256');
  const md5: Hash | undefined = claims.md5 === undefined ? undefined : createHash('md5');
  return {
    checksumSha256: claims.sha256,
    update(chunk) {
      sha256.update(chunk);
      md5?.update(chunk);
    },
    finish() {
      const digest = sha256.digest();
      if (claims.md5 !== undefined && md5?.digest('base64') !== claims.md5) return { refusal: { code: 'BadDigest', message: 'The Content-MD5 you specified did not match what was received.' } };
      if (claims.sha256 !== undefined && digest.toString('base64') !== claims.sha256) return { refusal: { code: 'BadDigest', message: 'The SHA256 you specified did not match the calculated checksum.' } };
      if (claims.payloadSha256 !== undefined && digest.toString('hex') !== claims.payloadSha256) {
        return { refusal: { code: 'XAmzContentSHA256Mismatch', message: 'The provided x-amz-content-sha256 header does not match what was computed.' } };
      }
      return { etag: digest.toString('hex') };
    },
  };
}
