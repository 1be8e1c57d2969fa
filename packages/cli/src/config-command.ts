import { ArteriaError } from '@arteria/protocol';
import { explainConfig, getPath, loadConfig } from './config/load.js';
import { CONFIG_KEYS } from './config/keys.js';
import { ROLE_HTTP_PORTS, isClusterRole, roleDefaults } from './config/role-defaults.js';

export const CONFIG_HELP = `arteria config [--explain] [--role <role>] [config flags]   print the effective configuration
  (--explain: every key with its value, where it came from: default, file, env or
  flag, and its environment variable and flag names; secrets are masked.
  --role ingest|worker|autoscaler|dashboard: with that role's defaults, e.g. its HTTP port)`;

export async function configCommand(argv: string[]): Promise<number> {
  const explain = argv.includes('--explain');
  const rest = argv.filter((a) => a !== '--explain');
  const at = rest.indexOf('--role');
  let defaults: Record<string, unknown> = {};
  if (at >= 0) {
    const role = rest[at + 1] ?? '';
    if (!isClusterRole(role)) throw new ArteriaError('CONFIG_INVALID', `--role must be one of ${Object.keys(ROLE_HTTP_PORTS).join(', ')}, got ${JSON.stringify(role)}`);
    defaults = roleDefaults(role);
    rest.splice(at, 2);
  }
  const loaded = await loadConfig({ argv: rest, env: process.env, defaults });
  if (explain) {
    process.stdout.write(`${explainConfig(loaded)}\n`);
    return 0;
  }
  const masked: Record<string, unknown> = structuredClone(loaded.config);
  for (const key of CONFIG_KEYS) {
    if (!key.secret || getPath(masked, key.path) === '') continue;
    const [group = '', leaf = ''] = key.path.split('.');
    const node = masked[group];
    if (node !== null && typeof node === 'object') Object.assign(node, { [leaf]: '********' });
  }
  process.stdout.write(`${JSON.stringify(masked, null, 2)}\n`);
  return 0;
}
