import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { EmbeddedPlatform } from '../src/embedded/embedded-platform.js';
import { fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

const CHILD = fileURLToPath(new URL('./fixtures/platform-process.mjs', import.meta.url));

async function refusal(dataDir: string): Promise<ArteriaError> {
  const err = await startPlatform(dataDir).then(
    async ({ platform }) => {
      await platform.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArteriaError);
  return err as ArteriaError;
}

// Two platforms on one data dir would share its queue, ledger, audit chain and objects: the second is refused, by name.
describe('one embedded platform per data dir', () => {
  it('refuses a second platform on the data dir in this process until the first closes, before binding any port', async () => {
    const tmp = await tempDir('lock-same');
    try {
      const { platform: first } = await startPlatform(tmp.dir);
      const err = await refusal(tmp.dir);
      expect(err.code).toBe('DATA_DIR_IN_USE');
      expect(err.message).toContain(tmp.dir);
      // Its ports were asked for explicitly: a refusal for the port would have come first had any been bound.
      const second = await EmbeddedPlatform.start({ mqttPort: Number(new URL(first.mqttUrl).port), s3Port: 0, httpPort: 0, dataDir: tmp.dir, tenants: { acme: 'test-tenant-secret-0123456789' }, algorithmDirs: [fixtureAlgorithm('echo')] }).catch((e: unknown) => e);
      expect((second as ArteriaError).code).toBe('DATA_DIR_IN_USE');
      expect((await first.status()).state).toBe('running');
      await first.close();
      const { platform: third } = await startPlatform(tmp.dir);
      expect((await third.status()).state).toBe('running');
      await third.close();
    } finally {
      await tmp.remove();
    }
  });

  it('refuses while a platform process holds the data dir, and takes it over once that process is killed', async () => {
    const tmp = await tempDir('lock-process');
    try {
      const child = spawn(process.execPath, [CHILD, tmp.dir, fixtureAlgorithm('echo'), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = once(child, 'exit');
      try {
        for await (const line of createInterface({ input: child.stdout })) if (line.startsWith('{')) break;
        expect((await refusal(tmp.dir)).code).toBe('DATA_DIR_IN_USE');
      } finally {
        // A SIGKILL leaves no lock behind: the operating system lets go of it with the process.
        child.kill('SIGKILL');
        await exited;
      }
      const { platform } = await startPlatform(tmp.dir);
      expect((await platform.status()).state).toBe('running');
      await platform.close();
    } finally {
      await tmp.remove();
    }
  });
});
