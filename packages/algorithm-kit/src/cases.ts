/**
 * Golden cases and evaluation sets: which runs an algorithm is tried on and what it must
 * answer. Inputs are DICOM files in the package or seeded synthetic runs (the same
 * options always give the same bytes), so a case file stays small and reviewable.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ArteriaError, ERROR_CODES, type ErrorCode } from '@arteria/protocol';
import { synthesizeXaRun } from '@arteria/dicom';
import { synthesizeBalloonRun } from '@arteria/synth';

/** Where a case's DICOM run comes from. */
export const CaseInput = z.union([
  /** A synthetic XA run (@arteria/dicom synthesizeXaRun options). */
  z.strictObject({ xa: z.record(z.string(), z.unknown()) }),
  /** A synthetic angioplasty run with a balloon (@arteria/synth synthesizeBalloonRun options). */
  z.strictObject({ balloon: z.record(z.string(), z.unknown()) }),
  /** A DICOM Part 10 file, relative to the package folder. */
  z.strictObject({ file: z.string().min(1) }),
]);
export type CaseInput = z.infer<typeof CaseInput>;

const errorCode = z.string().refine((code): code is ErrorCode => Object.hasOwn(ERROR_CODES, code), 'is not a registered Arteria error code');

export const GoldenCase = z.strictObject({
  name: z.string().min(1).max(200),
  input: CaseInput,
  /**
   * What the run must give: `output` (compared value by value, numbers within
   * `tolerance`) or `error` (the code the platform reports). Absent: recorded by
   * `arteria algorithm test --update`.
   */
  expect: z.union([z.strictObject({ output: z.unknown() }), z.strictObject({ error: errorCode })]).optional(),
  /** Largest absolute difference accepted between expected and actual numbers. Default 1e-6. */
  tolerance: z.number().min(0).max(1e6).default(1e-6),
});
export type GoldenCase = z.infer<typeof GoldenCase>;

export const GoldenFile = z.strictObject({ $comment: z.string().optional(), cases: z.array(GoldenCase).min(1).max(1000) });
export type GoldenFile = z.infer<typeof GoldenFile>;

export const EvalItem = z.strictObject({ name: z.string().min(1).max(200).optional(), input: CaseInput, label: z.unknown() });
export const EvalSet = z.strictObject({ $comment: z.string().optional(), items: z.array(EvalItem).min(1).max(100_000) });
export type EvalSet = z.infer<typeof EvalSet>;

/** Where the kit looks for them inside an algorithm package. */
export const GOLDEN_FILE = 'golden/cases.json';
export const EVAL_FILE = 'eval/dataset.json';
export const EVAL_SCORER = 'eval/score.js';

function invalid(file: string, message: string, cause?: unknown): ArteriaError {
  return new ArteriaError('CONFIG_INVALID', `${file}: ${message}`, { cause });
}

/** Reads and checks a JSON file against `schema`; CONFIG_INVALID names the first problem. */
export async function readJsonFile<S extends z.ZodType>(file: string, schema: S): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw invalid(file, `cannot be read: ${(err as Error).message}`, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(file, `is not JSON: ${(err as Error).message}`, err);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(file, `${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'is invalid'}`);
  }
  return parsed.data;
}

export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The DICOM bytes of a case input, made fresh each call (the runner takes ownership of them). */
export async function inputBytes(dir: string, input: CaseInput): Promise<Uint8Array> {
  if ('file' in input) {
    const file = path.resolve(dir, input.file);
    try {
      return new Uint8Array(await readFile(file));
    } catch (err) {
      throw invalid(file, `cannot be read: ${(err as Error).message}`, err);
    }
  }
  // The generators validate their own options (CONFIG_INVALID naming the field).
  if ('xa' in input) return new Uint8Array(synthesizeXaRun(input.xa).bytes);
  return new Uint8Array(synthesizeBalloonRun(input.balloon).bytes);
}

export function describeInput(input: CaseInput): string {
  if ('file' in input) return input.file;
  const [kind, options] = 'xa' in input ? ['xa', input.xa] : ['balloon', input.balloon];
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const rows = num(options.rows);
  const size = rows !== undefined ? ` ${rows}x${num(options.columns) ?? rows}` : '';
  const frames = num(options.frames) !== undefined ? ` ${num(options.frames)} frames` : '';
  return `synthetic ${kind}${size}${frames}`;
}

/**
 * Where `actual` differs from `expected` (a JSON path and both values), or undefined when
 * they agree. Numbers agree within `tolerance`; everything else must be equal.
 */
export function firstDifference(expected: unknown, actual: unknown, tolerance: number, at = ''): string | undefined {
  const where = at === '' ? '/' : at;
  if (typeof expected === 'number' && typeof actual === 'number') {
    return Math.abs(expected - actual) <= tolerance ? undefined : `${where}: expected ${expected}, got ${actual} (tolerance ${tolerance})`;
  }
  if (Array.isArray(expected) || Array.isArray(actual)) {
    if (!Array.isArray(expected) || !Array.isArray(actual)) return `${where}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    if (expected.length !== actual.length) return `${where}: expected ${expected.length} items, got ${actual.length}`;
    for (let i = 0; i < expected.length; i++) {
      const d = firstDifference(expected[i], actual[i], tolerance, `${at}/${i}`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null && typeof actual === 'object' && actual !== null) {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(e), ...Object.keys(a)])].sort();
    for (const key of keys) {
      if (!(key in a)) return `${at}/${key}: missing (expected ${JSON.stringify(e[key])})`;
      if (!(key in e)) return `${at}/${key}: not expected (got ${JSON.stringify(a[key])})`;
      const d = firstDifference(e[key], a[key], tolerance, `${at}/${key}`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : `${where}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}
