import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Folders of the algorithms that ship with Arteria. */
export function bundledAlgorithmDirs(): string[] {
  return ['@arteria/contrast-injection/manifest.json', '@arteria/balloon-inflation/manifest.json'].map((spec) => path.dirname(fileURLToPath(import.meta.resolve(spec))));
}
