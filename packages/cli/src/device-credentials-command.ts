import path from 'node:path';
import { parseArgs } from 'node:util';
import { usageError } from '@arteria/command';
import { REVOCATIONS_FILE, reinstateDevice, revokeDevice } from '@arteria/ports';
import { ArteriaError, deviceToken } from '@arteria/protocol';
import { int } from './args.js';
import { parseDeviceName } from './cluster/provision.js';
import { readSecrets } from './secrets.js';

export const DEVICE_CREDENTIALS_HELP = `arteria devices token <tenant>/<device> [--days N] [--generation G] [--data-dir D]
                                  a device token for an embedded installation (\`arteria up\`),
                                  from its tenant's secret; it expires after N days (default 90)
arteria devices revoke <tenant>/<device> [--reason R] [--data-dir D]
                                  the running platform refuses the device within a second,
                                  whatever token or certificate it holds; other devices go on
arteria devices reinstate <tenant>/<device> [--data-dir D]   lift a revocation
  --data-dir <path>   the installation (default .arteria); its revoked-devices.json is the list`;

const OPTIONS = {
  'data-dir': { type: 'string', default: '.arteria' },
  days: { type: 'string', default: '90' },
  generation: { type: 'string', default: '0' },
  reason: { type: 'string' },
} as const;

/** `arteria devices token|revoke|reinstate`: one device's credentials on an embedded installation. */
export async function deviceCredentialsCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) throw usageError(`name one device: arteria devices ${action ?? 'token'} <tenant>/<device>`);
  const address = parseDeviceName(name);
  const dataDir = path.resolve(values['data-dir']);
  const revocations = path.join(dataDir, REVOCATIONS_FILE);
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  switch (action) {
    case 'token': {
      const secret = (await readSecrets(path.join(dataDir, 'secrets.json'))).tenants[address.tenant];
      if (secret === undefined) throw new ArteriaError('CONFIG_INVALID', `no tenant ${address.tenant} in ${path.join(dataDir, 'secrets.json')}`);
      const expiresAt = Date.now() + int(values.days, '--days') * 86_400_000;
      say(deviceToken(secret, address, { generation: int(values.generation, '--generation'), expiresAt }));
      process.stderr.write(`token of ${name}, valid until ${new Date(expiresAt).toISOString()}\n`);
      return 0;
    }
    case 'revoke': {
      const entry = await revokeDevice(revocations, address, values.reason);
      say(`device ${name} revoked at ${new Date(entry.revokedAt).toISOString()} (${revocations}): its logins and requests are refused; the tenant's other devices go on`);
      return 0;
    }
    case 'reinstate':
      say((await reinstateDevice(revocations, address)) ? `device ${name} reinstated` : `device ${name} was not revoked`);
      return 0;
    default:
      throw usageError(`unknown devices command ${JSON.stringify(action ?? '')}`);
  }
}
