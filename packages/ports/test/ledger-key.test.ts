import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateLedgerSigner } from '@arteria/ports';

describe('the ledger signing key', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('processes starting at once all get the one key, never a file still being written', async () => {
    for (let round = 0; round < 20; round += 1) {
      const dir = await mkdtemp(path.join(tmpdir(), 'arteria-ledger-key-'));
      dirs.push(dir);
      const file = path.join(dir, 'keys', 'ledger.key');
      const signers = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateLedgerSigner(file)));
      expect(new Set(signers.map((s) => s.keyId)).size).toBe(1);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await readdir(path.dirname(file))).toEqual(['ledger.key']);
    }
  });
});
