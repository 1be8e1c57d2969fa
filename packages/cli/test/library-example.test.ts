import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The README's "Use it as a library" code block, as a reader would copy it. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it as a library'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('README has no library example');
  return block;
}

describe('the README library example', () => {
  it('runs as written: a run goes through an embedded platform and a gateway and comes back ok', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-lib-'));
    try {
      // The example runs from the repository root; its own files go to lib-demo/, here a temporary folder.
      await mkdir(path.join(dir, 'lib-demo'), { recursive: true });
      const run = synthesizeXaRun({ seed: 7, rows: 64, columns: 64, frames: 24, frameRateHz: 15, bitsStored: 12, contrast: { startFrame: 6, peakFrame: 12, endFrame: 20 } });
      await writeFile(path.join(dir, 'lib-demo/run.dcm'), run.bytes);
      // Written inside this package so its imports resolve to the workspace's packages.
      const script = path.join(fileURLToPath(new URL('.', import.meta.url)), `.library-example-${process.pid}.mjs`);
      const code = (await readmeExample())
        .replaceAll("'lib-demo/", `'${dir}/lib-demo/`)
        .replace("'algorithms/contrast-injection'", `'${path.join(ROOT, 'algorithms/contrast-injection')}'`)
        .replace('console.log(result.status, result.algorithm, result.output);', 'globalThis.libraryExampleResult = result;');
      await writeFile(script, code);
      try {
        await import(script);
      } finally {
        await rm(script, { force: true });
      }
      const result = (globalThis as { libraryExampleResult?: { status: string; algorithm?: { name: string } } }).libraryExampleResult;
      expect(result?.status).toBe('ok');
      expect(result?.algorithm?.name).toBe('contrast-injection');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
