import path from 'node:path';
import type { ClusterConfig } from '@arteria/platform';
import { ArteriaError } from '@arteria/protocol';
import { readSecrets, type EmbeddedSecrets } from '../secrets.js';

/**
 * The platform secret (and tenant secrets, for broker files) of a cluster role: the
 * `secrets.platformSecret` key wins; otherwise `secrets.file`, then {dataDir}/secrets.json.
 * In Kubernetes both come from a Secret (environment or mounted file).
 */
export async function clusterSecrets(config: Readonly<ClusterConfig>): Promise<EmbeddedSecrets> {
  const file = config.secrets.file === '' ? path.join(path.resolve(config.dataDir), 'secrets.json') : path.resolve(config.secrets.file);
  let fromFile: EmbeddedSecrets | undefined;
  try {
    fromFile = await readSecrets(file);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (!missing || config.secrets.file !== '') throw new ArteriaError('CONFIG_INVALID', `secrets file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const platformSecret = config.secrets.platformSecret !== '' ? config.secrets.platformSecret : fromFile?.platformSecret;
  if (platformSecret === undefined || platformSecret.length < 16) {
    throw new ArteriaError('CONFIG_INVALID', `no platform secret: set secrets.platformSecret (ARTERIA_SECRETS_PLATFORM_SECRET, at least 16 characters) or secrets.file`);
  }
  return { platformSecret, tenants: fromFile?.tenants ?? {} };
}
