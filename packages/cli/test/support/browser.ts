import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Debian's chromium as playwright-core drives it here (never `playwright install`). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * Where a browser test keeps its screenshots and reports for a person (or CI) to look at:
 * `test-results/<name>` at the repository root (ignored by git), or under ARTERIA_TEST_ARTIFACTS.
 */
export async function testArtifactDir(name: string): Promise<string> {
  const dir = path.join(process.env.ARTERIA_TEST_ARTIFACTS ?? path.join(REPO, 'test-results'), name);
  await mkdir(dir, { recursive: true });
  return dir;
}
