import { explainConfig, getPath, loadConfig } from './config/load.js';
import { CONFIG_KEYS } from './config/keys.js';

export const CONFIG_HELP = `arteria config [--explain] [config flags]   print the effective configuration
  (--explain: every key with its value, where it came from: default, file, env or
  flag, and its environment variable and flag names; secrets are masked)`;

export async function configCommand(argv: string[]): Promise<number> {
  const explain = argv.includes('--explain');
  const loaded = await loadConfig({ argv: argv.filter((a) => a !== '--explain'), env: process.env });
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
