import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const contrastDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

/** contrast-injection's code without its incremental contract, as `whole-only` in `dir`: an algorithm version that takes whole runs only. */
export async function writeWholeOnlyAlgorithm(dir: string): Promise<void> {
  const manifest = JSON.parse(await readFile(path.join(contrastDir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  await mkdir(path.join(dir, 'dist'), { recursive: true });
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, name: 'whole-only', entry: 'dist/index.mjs' }));
  const contrast = pathToFileURL(path.join(contrastDir, 'dist', 'index.js')).href;
  await writeFile(path.join(dir, 'dist', 'index.mjs'), `import algorithm from ${JSON.stringify(contrast)};\nexport default { run: algorithm.run, runStream: algorithm.runStream };\n`);
}
