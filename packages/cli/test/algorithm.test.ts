import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTERIA_PROGRAM } from '@arteria/cli';
import { EXIT, runProgram } from '@arteria/command';
import { AlgorithmRegistry, readPublicKey } from '@arteria/worker';

let root: string;
const at = (...parts: string[]): string => path.join(root, ...parts);

async function arteria(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const code = await runProgram(ARTERIA_PROGRAM, argv, { stdout: (t) => (out.stdout += t), stderr: (t) => (out.stderr += t) });
  return { code, ...out };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'arteria-algorithm-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('arteria algorithm: from init to a verified, installed artifact', () => {
  let artifact: string;

  it('init scaffolds a package whose own test passes', { timeout: 180_000 }, async () => {
    const init = await arteria('algorithm', 'init', 'stenosis-demo', '--runtime', 'onnx', '--dir', at('stenosis-demo'));
    expect(init.stderr).toBe('');
    expect(init.code).toBe(EXIT.ok);
    expect(init.stdout).toMatch(/stenosis-demo@0\.1\.0: all \d+ checks passed/);
    const test = await arteria('algorithm', 'test', at('stenosis-demo'));
    expect(test).toMatchObject({ code: EXIT.ok, stderr: '' });
    expect(test.stdout).not.toMatch(/^FAIL/m);
    expect(test.stdout).toMatch(/^ok {3}determinism/m);
  });

  it('test exits 1 and names the case when an answer changes', { timeout: 120_000 }, async () => {
    const golden = at('stenosis-demo', 'golden', 'cases.json');
    const original = await readFile(golden, 'utf8');
    const cases = JSON.parse(original) as { cases: { expect: { output: { peakFrame: number } } }[] };
    const first = cases.cases[0]!.expect.output;
    const actual = first.peakFrame;
    first.peakFrame = actual + 1;
    await writeFile(golden, JSON.stringify(cases));
    try {
      const r = await arteria('algorithm', 'test', at('stenosis-demo'));
      expect(r.code).toBe(EXIT.failure);
      expect(r.stdout).toContain(`FAIL golden      contrast peaking at frame 10: output differs at /peakFrame: expected ${actual + 1}, got ${actual}`);
    } finally {
      await writeFile(golden, original);
    }
  });

  it('pack writes a content-addressed artifact and prints its digest', { timeout: 180_000 }, async () => {
    const r = await arteria('algorithm', 'pack', at('stenosis-demo'), '--out', at('artifacts'));
    expect(r).toMatchObject({ code: EXIT.ok, stderr: '' });
    const digest = /digest +sha256:([0-9a-f]{64})/.exec(r.stdout)?.[1];
    expect(digest).toBeDefined();
    artifact = at('artifacts', `stenosis-demo-0.1.0-sha256-${digest}.tar`);
    expect((await stat(artifact)).isFile()).toBe(true);
  });

  it('keygen, sign and verify; a tampered artifact or a stranger key fails verify', async () => {
    expect((await arteria('algorithm', 'keygen', at('keys', 'release'))).code).toBe(EXIT.ok);
    expect((await arteria('algorithm', 'keygen', at('keys', 'other'))).code).toBe(EXIT.ok);
    expect((await stat(at('keys', 'release.key'))).mode & 0o777).toBe(0o600);
    expect((await arteria('algorithm', 'keygen', at('keys', 'release'))).code).toBe(EXIT.config);

    const signed = await arteria('algorithm', 'sign', artifact, '--key', at('keys', 'release.key'));
    expect(signed).toMatchObject({ code: EXIT.ok, stderr: '' });
    const verified = await arteria('algorithm', 'verify', artifact, '--public-key', at('keys', 'release.pub'));
    expect(verified).toMatchObject({ code: EXIT.ok, stdout: expect.stringMatching(/^verified stenosis-demo@0\.1\.0: signed by key [0-9a-f]{16}/) as string });

    const stranger = await arteria('algorithm', 'verify', artifact, '--public-key', at('keys', 'other.pub'));
    expect(stranger).toMatchObject({ code: EXIT.failure, stderr: expect.stringMatching(/ARTIFACT_SIGNATURE_INVALID: .*not trusted/) as string });

    // One byte changed in the model inside the archive.
    const tampered = at('tampered.tar');
    const bytes = await readFile(artifact);
    const model = bytes.indexOf(Buffer.from('GlobalAveragePool'));
    bytes[model] = 'g'.charCodeAt(0);
    await writeFile(tampered, bytes);
    const r = await arteria('algorithm', 'verify', tampered, '--public-key', at('keys', 'release.pub'), '--signature', `${artifact}.sig.json`);
    expect(r).toMatchObject({ code: EXIT.failure, stderr: expect.stringMatching(/ARTIFACT_SIGNATURE_INVALID: .*changed after it was signed/) as string });
  });

  it('install refuses an unsigned artifact when a signature is required, and installs a signed one the registry accepts', { timeout: 60_000 }, async () => {
    const unsigned = at('unsigned.tar');
    await writeFile(unsigned, await readFile(artifact));
    const refused = await arteria('algorithm', 'install', unsigned, '--into', at('installed'), '--public-key', at('keys', 'release.pub'), '--require-signature');
    expect(refused).toMatchObject({ code: EXIT.failure, stderr: expect.stringMatching(/ARTIFACT_UNSIGNED/) as string });

    const installed = await arteria('algorithm', 'install', artifact, '--into', at('installed'), '--public-key', at('keys', 'release.pub'), '--require-signature');
    expect(installed).toMatchObject({ code: EXIT.ok, stderr: '' });
    const [dir] = await readdir(at('installed'));
    const key = await readPublicKey(at('keys', 'release.pub'));
    const registry = await AlgorithmRegistry.load([at('installed', dir!)], { trust: { publicKeys: [key], requireSignatures: true } });
    const loaded = registry.resolve('stenosis-demo');
    expect(loaded.signedBy).toMatch(/^[0-9a-f]{16}$/);
    expect(installed.stdout).toContain(loaded.digest);
  });
});
