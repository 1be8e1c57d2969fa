import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const EmbeddedSecrets = z.strictObject({
  platformSecret: z.string().min(16),
  tenants: z.record(z.string(), z.string().min(16)),
  /** Operator token of the ops HTTP port (dashboard, /api, /metrics); added to older files on start. */
  opsToken: z.string().min(16).optional(),
});
export type EmbeddedSecrets = z.infer<typeof EmbeddedSecrets>;

export const DEFAULT_TENANT = 'demo';

/** Reads a secrets file ({platformSecret, tenants}), as `arteria up` writes it. */
export async function readSecrets(file: string): Promise<EmbeddedSecrets> {
  return EmbeddedSecrets.parse(JSON.parse(await readFile(file, 'utf8')));
}

/**
 * Secrets of an embedded installation, kept in its data folder (mode 0600) so that
 * gateways started later on the same machine can derive their device tokens.
 */
export async function loadOrCreateSecrets(dataDir: string): Promise<EmbeddedSecrets> {
  const file = path.join(dataDir, 'secrets.json');
  let existing: EmbeddedSecrets | undefined;
  try {
    existing = EmbeddedSecrets.parse(JSON.parse(await readFile(file, 'utf8')));
    if (existing.opsToken !== undefined) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secrets: EmbeddedSecrets = {
    platformSecret: existing?.platformSecret ?? randomBytes(24).toString('base64url'),
    tenants: existing?.tenants ?? { [DEFAULT_TENANT]: randomBytes(24).toString('base64url') },
    opsToken: randomBytes(24).toString('base64url'),
  };
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return secrets;
}
