import { readFile } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';

export function num(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new ArteriaError('CONFIG_INVALID', `${flag} must be a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

export function int(value: string, flag: string): number {
  const n = num(value, flag);
  if (!Number.isInteger(n)) throw new ArteriaError('CONFIG_INVALID', `${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return n;
}

/** A JSON file named by a flag, parsed; a missing or malformed file is a CONFIG_INVALID naming the flag. */
export async function readJsonFile(file: string, flag: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${flag} ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${flag} ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
