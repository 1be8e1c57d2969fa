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
