import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A test algorithm folder (echo, throws, loops, ...) from the kit's fixtures. */
export const fixtureAlgorithm = (name: string): string => fileURLToPath(new URL(`../fixtures/algorithms/${name}`, import.meta.url));

/** A fresh temporary folder and the function that removes it. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `arteria-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
