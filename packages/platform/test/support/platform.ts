import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedPlatform, EMBEDDED_S3_CREDENTIALS, createS3Client } from '@arteria/platform';
import type { S3Client } from '@aws-sdk/client-s3';

export const SECRET = 'test-tenant-secret-0123456789';
export const fixtureAlgorithm = (name: string): string => fileURLToPath(new URL(`../fixtures/algorithms/${name}`, import.meta.url));

export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `arteria-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** An embedded platform on free ports in a fresh data folder. */
export async function startPlatform(dataDir: string, overrides: Record<string, unknown> = {}): Promise<{ platform: EmbeddedPlatform; s3: S3Client }> {
  const platform = await EmbeddedPlatform.start({
    mqttPort: 0,
    s3Port: 0,
    httpPort: 0,
    dataDir,
    workers: 2,
    tenants: { acme: SECRET },
    algorithmDirs: [fixtureAlgorithm('echo')],
    ...overrides,
  });
  const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
  return { platform, s3 };
}
