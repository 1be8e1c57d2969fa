import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';

export interface S3ConnectionOptions {
  endpoint: string;
  region: string;
  /** Absent: the client sends only to presigned URLs (upload grants) and signs nothing itself. */
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
}

/**
 * Credentials of a client that only sends to presigned URLs: the SDK insists on signing,
 * and the signature it makes with these is removed before sending (part-store.ts). The
 * store refuses anything signed with them.
 */
const PRESIGNED_ONLY = { accessKeyId: 'arteria-presigned-urls-only', secretAccessKey: 'none' } as const;

/**
 * An S3 client that works the same against S3, MinIO and the embedded s3rver:
 * path-style addressing, and checksums only where the API requires them (the SDK's
 * default streaming checksums make s3rver store the aws-chunked framing inside the
 * object; Arteria verifies content with its own SHA-256 instead). `proxyAgent`: the
 * site proxy's tunnelling agent (proxyAgentFor), when the endpoint is reached through one.
 */
export function createS3Client(options: S3ConnectionOptions, proxyAgent?: HttpAgent): S3Client {
  return new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    credentials:
      options.accessKeyId !== undefined && options.secretAccessKey !== undefined ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } : PRESIGNED_ONLY,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Behind a site proxy every request is tunnelled through it (HTTP CONNECT).
    requestHandler: proxyAgent
      ? { httpAgent: proxyAgent, httpsAgent: proxyAgent }
      : {
          httpAgent: new HttpAgent({ keepAlive: true, noDelay: true }),
          httpsAgent: new HttpsAgent({ keepAlive: true, noDelay: true }),
        },
  });
}
