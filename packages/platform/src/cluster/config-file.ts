import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ArteriaError } from '@arteria/protocol';

/** Reads a configuration file: `.json` as JSON, anything else as YAML (a Kubernetes ConfigMap's usual form). */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = path.extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ArteriaError('CONFIG_INVALID', `config file ${file}: must hold an object`);
  return parsed as Record<string, unknown>;
}
