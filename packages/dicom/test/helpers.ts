import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ArteriaError, type ErrorCode } from '@arteria/protocol';
import { expect } from 'vitest';

const run = promisify(execFile);

/** Runs a DCMTK tool (CI installs dcmtk) and returns its output. */
export async function dcmtk(tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(tool, args, { maxBuffer: 64 * 1024 * 1024 });
}

/** A scratch folder; call cleanup() in afterAll. */
export async function scratch(): Promise<{ dir: string; path: (name: string) => string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'arteria-dicom-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes bytes, lets a DCMTK tool turn them into another file, and reads that back. */
export async function transform(dir: string, bytes: Uint8Array, tool: string, flags: string[]): Promise<Buffer> {
  const input = join(dir, `in-${tool}-${flags.join('')}.dcm`.replace(/[^\w.-]/g, '_'));
  const output = `${input}.out.dcm`;
  await writeFile(input, bytes);
  await dcmtk(tool, [...flags, input, output]);
  return readFile(output);
}

/** Writes bytes, edits them in place with dcmodify, and reads them back. */
export async function modify(dir: string, bytes: Uint8Array, flags: string[]): Promise<Buffer> {
  const path = join(dir, `modify-${flags.join('')}.dcm`.replace(/[^\w.-]/g, '_'));
  await writeFile(path, bytes);
  await dcmtk('dcmodify', ['-nb', ...flags, path]);
  return readFile(path);
}

/** Asserts fn throws an ArteriaError with the code, and returns its message. */
export function expectArteriaError(fn: () => unknown, code: ErrorCode): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ArteriaError);
    expect((err as ArteriaError).code).toBe(code);
    return (err as ArteriaError).message;
  }
  throw new Error(`expected ArteriaError ${code}, nothing was thrown`);
}

