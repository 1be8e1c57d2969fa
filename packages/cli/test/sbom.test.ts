import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Bom {
  bomFormat: string;
  specVersion: string;
  components: { name: string; group?: string; version: string; purl?: string }[];
}

const names = (bom: Bom): Set<string> => new Set(bom.components.map((c) => (c.group ? `${c.group}/${c.name}` : c.name)));

/** `npm run sbom`: one CycloneDX SBOM per deployable part, runtime dependencies only. */
describe('npm run sbom', () => {
  let out: string;
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('writes the gateway and platform SBOMs with what each really ships', async () => {
    out = await mkdtemp(path.join(tmpdir(), 'arteria-sbom-'));
    await run('bash', [path.join(ROOT, 'scripts/sbom.sh'), out], { cwd: ROOT, timeout: 120_000 });
    const gateway = JSON.parse(await readFile(path.join(out, 'gateway.cdx.json'), 'utf8')) as Bom;
    const platform = JSON.parse(await readFile(path.join(out, 'platform.cdx.json'), 'utf8')) as Bom;
    for (const bom of [gateway, platform]) {
      expect(bom).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6' });
      for (const c of bom.components) expect(c.purl ?? '').toMatch(/^pkg:npm\//);
      // Development tools are not shipped.
      expect(names(bom).has('vitest')).toBe(false);
      expect(names(bom).has('eslint')).toBe(false);
    }
    for (const dep of ['mqtt', '@aws-sdk/client-s3', 'dcmjs-dimse', 'better-sqlite3']) expect(names(gateway).has(dep)).toBe(true);
    for (const dep of ['onnxruntime-node', '@nats-io/jetstream', 'aedes', '@arteria/platform']) expect(names(platform).has(dep)).toBe(true);
    // The gateway does not carry the platform's servers.
    expect(names(gateway).has('aedes')).toBe(false);
  }, 180_000);
});
