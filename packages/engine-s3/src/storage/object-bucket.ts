import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ArteriaError } from '@arteria/protocol';
import type { ObjectBucket } from '@arteria/ports';

const isMissing = (err: unknown): boolean => {
  const name = (err as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound';
};

/** The ObjectBucket port on one bucket of any S3 API (the embedded store, MinIO, S3). */
export function s3ObjectBucket(client: S3Client, bucket: string): ObjectBucket {
  const location = `s3://${bucket}`;
  const unavailable = (what: string, key: string, err: unknown): ArteriaError =>
    new ArteriaError('STORAGE_UNAVAILABLE', `${what} ${location}/${key} failed: ${(err as Error).message}`, { cause: err });
  return {
    location,
    async list(prefix, suffix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) })).catch((err: unknown) => {
          throw unavailable('listing', prefix, err);
        });
        for (const object of page.Contents ?? []) if (object.Key?.endsWith(suffix)) keys.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return keys.sort();
    },
    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if (isMissing(err)) return false;
        throw unavailable('reading', key, err);
      }
    },
    async put(key, body, contentType) {
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength }));
      } catch (err) {
        throw unavailable('writing', key, err);
      }
    },
    async get(key) {
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        if (response.Body === undefined) return Buffer.alloc(0);
        return Buffer.from(await response.Body.transformToByteArray());
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw unavailable('reading', key, err);
      }
    },
    async delete(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      } catch (err) {
        throw unavailable('deleting', key, err);
      }
    },
  };
}
