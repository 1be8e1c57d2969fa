import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { ArteriaError } from '@arteria/protocol';

/**
 * Fails fast, naming the bucket, when the store says the bucket does not exist: without it
 * every task would fail one by one with a less telling error. Any other answer (no
 * permission to list, store unreachable) is left to the tasks, which retry.
 */
export async function assertBucketExists(client: S3Client, bucket: string, endpoint: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (err as Error).name === 'NotFound' || (err as Error).name === 'NoSuchBucket') {
      throw new ArteriaError('CONFIG_INVALID', `bucket ${bucket} does not exist at ${endpoint === '' ? 'S3' : endpoint}: create it (\`arteria store --bucket ${bucket}\` creates it on a local store) or set s3.bucket`, { cause: err });
    }
  }
}
