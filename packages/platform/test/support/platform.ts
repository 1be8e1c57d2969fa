import { EmbeddedPlatform } from '../../src/embedded/embedded-platform.js';
import { createS3Client } from '@arteria/engine-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { TestDevice, fixtureAlgorithm, tempDir } from '@arteria/testing';

export const SECRET = 'test-tenant-secret-0123456789';
/** The operator token of the platforms these tests start, and the header that carries it. */
export const OPS_TOKEN = 'test-operator-token-0123456789';
export const OPS_AUTH = { headers: { authorization: `Bearer ${OPS_TOKEN}` } };
export { fixtureAlgorithm, tempDir };

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
    opsToken: OPS_TOKEN,
    ...overrides,
  });
  const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
  return { platform, s3 };
}

export interface PlatformWithDevice {
  /** The fresh temp folder; removed by close(). */
  dir: string;
  platform: EmbeddedPlatform;
  s3: S3Client;
  device: TestDevice;
  /** Closes the device, the S3 client and the platform, then removes the folder. */
  close: () => Promise<void>;
}

/** Where the platform keeps its data, and what else it is started with. */
export interface PlatformSetup {
  dataDir: string;
  overrides?: Record<string, unknown>;
}

/** A fresh temp folder, an embedded platform with its data there and device acme/cath-lab-1 connected to it; `configure` may prepare the folder first. */
export async function startPlatformWithDevice(prefix: string, configure: (dir: string) => PlatformSetup | Promise<PlatformSetup> = (dir) => ({ dataDir: dir })): Promise<PlatformWithDevice> {
  const tmp = await tempDir(prefix);
  let started: { platform: EmbeddedPlatform; s3: S3Client } | undefined;
  try {
    const { dataDir, overrides } = await configure(tmp.dir);
    started = await startPlatform(dataDir, overrides);
    const { platform, s3 } = started;
    const device = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
    return {
      dir: tmp.dir,
      platform,
      s3,
      device,
      async close() {
        await device.close();
        s3.destroy();
        await platform.close();
        await tmp.remove();
      },
    };
  } catch (err) {
    started?.s3.destroy();
    await started?.platform.close();
    await tmp.remove();
    throw err;
  }
}
