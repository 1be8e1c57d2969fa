import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, type GatewayOptionsInput } from '@arteria/gateway';
import { DicomIntake } from '@arteria/gateway-site';
import { EmbeddedPlatform } from '@arteria/platform';
import { deviceToken } from '@arteria/protocol';

const CONTRAST_INJECTION_DIR = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

/** Drops info and warnings so a passing test prints nothing; errors still reach stderr. */
export const quiet = { info: () => undefined, warn: () => undefined, error: (message: string, fields?: Record<string, unknown>) => console.error(message, fields) };

export interface DicomPlatform {
  /** The fresh temp folder; the platform keeps its data in platform/ under it. */
  dir: string;
  platform: EmbeddedPlatform;
  /** Closes the platform, then removes the folder. */
  close: () => Promise<void>;
}

/** A fresh temp folder and an embedded platform in it running contrast-injection for tenant acme, whose devices sign with `secret`. */
export async function startDicomPlatform(prefix: string, secret: string): Promise<DicomPlatform> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  let platform: EmbeddedPlatform;
  try {
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: secret }, algorithmDirs: [CONTRAST_INJECTION_DIR] });
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    dir,
    platform,
    async close() {
      await platform.close();
      await remove();
    },
  };
}

/** The options of a gateway for device `device` of tenant acme sending contrast-injection runs to `platform`. */
export function platformGatewayOptions(platform: EmbeddedPlatform, secret: string, device: string, outboxPath: string): GatewayOptionsInput {
  return {
    tenant: 'acme',
    device,
    token: deviceToken(secret, { tenant: 'acme', device }),
    mqttUrl: platform.mqttUrl,
    s3: { endpoint: platform.s3Endpoint, bucket: platform.options.bucket },
    outboxPath,
    algorithm: 'contrast-injection@^1',
  };
}

/** A gateway for device `device` of tenant acme sending to `platform` (outbox and incoming folder under `folder`) and the DICOM intake (AE ARTERIA, a port the OS picks) feeding it; neither is started. */
export function gatewayWithIntake(platform: EmbeddedPlatform, secret: string, device: string, folder: string): { gateway: Gateway; intake: DicomIntake } {
  const gateway = new Gateway(platformGatewayOptions(platform, secret, device, path.join(folder, 'outbox.sqlite')), { logger: quiet });
  const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder: path.join(folder, 'incoming'), stableMs: 200 }, quiet);
  return { gateway, intake };
}
