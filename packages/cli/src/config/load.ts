import { parseClusterConfig, readConfigFile, type ClusterConfig } from '@arteria/platform';
import { usageError } from '@arteria/command';
import { ArteriaError } from '@arteria/protocol';
import { CONFIG_KEYS, envName, flagName, type ConfigKey } from './keys.js';

export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

export interface LoadedConfig {
  config: Readonly<ClusterConfig>;
  /** Where each key's value came from, by dotted path. */
  sources: ReadonlyMap<string, ConfigSource>;
  file: string | undefined;
}

export interface ConfigInputs {
  /** Flags as `--name value` pairs (role commands pass their argv). */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** The role's own defaults by dotted path (its HTTP port), under every other source. */
  defaults?: Readonly<Record<string, unknown>>;
}

/** Environment variables with the ARTERIA_ prefix that are not config keys but are allowed. */
const OTHER_ENV = new Set(['ARTERIA_CONFIG', 'ARTERIA_DEVICE_TOKEN']);

/**
 * Effective configuration: defaults < file (`--config` or ARTERIA_CONFIG; JSON or YAML)
 * < environment (ARTERIA_*, and a key's alias such as LOG_LEVEL) < flags. Unknown keys in any source are rejected.
 */
export async function loadConfig(inputs: ConfigInputs): Promise<LoadedConfig> {
  const { flags, file: fileFlag } = parseFlags(inputs.argv);
  const file = fileFlag ?? nonEmpty(inputs.env.ARTERIA_CONFIG);
  const merged: Record<string, unknown> = {};
  const sources = new Map<string, ConfigSource>();
  for (const [key, value] of Object.entries(inputs.defaults ?? {})) setPath(merged, key, value);

  if (file !== undefined) {
    const fromFile = await readConfigFile(file);
    for (const [key, value] of Object.entries(flatten(fromFile))) {
      setPath(merged, key, value);
      if (CONFIG_KEYS.some((k) => k.path === key)) sources.set(key, 'file');
    }
  }
  // Aliases (LOG_LEVEL, the variable log libraries and platforms use) yield to the ARTERIA_ name.
  for (const key of CONFIG_KEYS) {
    const value = key.envAlias === undefined ? undefined : nonEmpty(inputs.env[key.envAlias]);
    if (value === undefined || key.envAlias === undefined || inputs.env[envName(key.path)] !== undefined) continue;
    setPath(merged, key.path, fromText(key, value, key.envAlias));
    sources.set(key.path, 'env');
  }
  const byEnv = new Map(CONFIG_KEYS.map((k) => [envName(k.path), k]));
  for (const [name, value] of Object.entries(inputs.env)) {
    if (!name.startsWith('ARTERIA_') || value === undefined || OTHER_ENV.has(name)) continue;
    const key = byEnv.get(name);
    if (key === undefined) throw new ArteriaError('CONFIG_INVALID', `unknown environment variable ${name}; run \`arteria config --explain\` for the known keys`);
    setPath(merged, key.path, fromText(key, value, name));
    sources.set(key.path, 'env');
  }
  for (const [key, value] of flags) {
    setPath(merged, key.path, value);
    sources.set(key.path, 'flag');
  }
  const config = parseClusterConfig(merged);
  for (const key of CONFIG_KEYS) if (!sources.has(key.path)) sources.set(key.path, 'default');
  return { config, sources, file };
}

function parseFlags(argv: readonly string[]): { flags: [ConfigKey, unknown][]; file: string | undefined } {
  const byFlag = new Map(CONFIG_KEYS.map((k) => [flagName(k.path), k]));
  const flags: [ConfigKey, unknown][] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [name = '', inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const key = byFlag.get(name);
    if (name !== '--config' && key === undefined) throw usageError(`unknown option ${JSON.stringify(arg)}; run \`arteria config --explain\` for the known keys`);
    let value = inline;
    if (value === undefined && key?.type === 'bool' && !(argv[i + 1] === 'true' || argv[i + 1] === 'false')) value = 'true';
    if (value === undefined) {
      value = argv[i + 1];
      i += 1;
      if (value === undefined) throw usageError(`${name} needs a value`);
    }
    if (key === undefined) file = value;
    else if (key.type === 'list') {
      const previous = flags.find(([k]) => k === key);
      if (previous) (previous[1] as string[]).push(value);
      else flags.push([key, [value]]);
    } else flags.push([key, fromText(key, value, name)]);
  }
  return { flags, file };
}

function fromText(key: ConfigKey, text: string, where: string): unknown {
  switch (key.type) {
    case 'string':
      return text;
    case 'list':
      return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
    case 'bool':
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      throw new ArteriaError('CONFIG_INVALID', `${where} must be true or false, got ${JSON.stringify(text)}`);
    case 'int': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isInteger(n)) throw new ArteriaError('CONFIG_INVALID', `${where} must be a whole number, got ${JSON.stringify(text)}`);
      return n;
    }
  }
}

/** Leaves of a nested object by dotted path; arrays are leaves. */
function flatten(value: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const p = prefix === '' ? key : `${prefix}.${key}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, p));
    else out[p] = v;
  }
  return out;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] ?? ''] = value;
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** `arteria config --explain`: every key, its effective value and where it came from. */
export function explainConfig(loaded: LoadedConfig): string {
  const lines = [`# effective configuration${loaded.file === undefined ? '' : ` (file: ${loaded.file})`}`];
  const width = Math.max(...CONFIG_KEYS.map((k) => k.path.length));
  for (const key of CONFIG_KEYS) {
    const value = getPath(loaded.config, key.path);
    const shown = key.secret && value !== '' ? '********' : JSON.stringify(value);
    lines.push(`${key.path.padEnd(width)}  ${shown}  (${loaded.sources.get(key.path) ?? 'default'}; env ${envName(key.path)}${key.envAlias === undefined ? '' : ` or ${key.envAlias}`}, flag ${flagName(key.path)})`);
  }
  return lines.join('\n');
}

export function getPath(value: unknown, dotted: string): unknown {
  let node = value;
  for (const part of dotted.split('.')) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined;
  return node;
}
