import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { encodePayload } from '@arteria/protocol';
import { AlgorithmRegistry, SIGNATURE_FILE, publicKeyId, signArtifact } from '@arteria/worker';
import { EntitlementPolicy } from '@arteria/ingest';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

const release = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const trust = (keys: KeyObject[], requireSignatures: boolean): { trust: { publicKeys: KeyObject[]; requireSignatures: boolean } } => ({ trust: { publicKeys: keys, requireSignatures } });

let tmp: { dir: string; remove(): Promise<void> };

/** A copy of the echo fixture as `version`, signed by `key` over the digest the registry computes. */
async function echoCopy(name: string, version: string, key?: KeyObject): Promise<string> {
  const dir = path.join(tmp.dir, name);
  await cp(fixtureAlgorithm('echo'), dir, { recursive: true });
  const manifestFile = path.join(dir, 'manifest.json');
  await writeFile(manifestFile, (await readFile(manifestFile, 'utf8')).replace('"version": "1.0.0"', `"version": "${version}"`));
  if (key) {
    const { digest } = (await AlgorithmRegistry.load([dir])).list()[0]!;
    const signature = signArtifact({ algorithm: `echo@${version}`, archiveDigest: `sha256:${'0'.repeat(64)}`, contentDigest: digest }, key);
    await writeFile(path.join(dir, SIGNATURE_FILE), JSON.stringify(signature));
  }
  return dir;
}

beforeAll(async () => {
  tmp = await tempDir('signatures');
});
afterAll(async () => {
  await tmp.remove();
});

describe('the registry and signed algorithm artifacts', () => {
  it('records which trusted key signed a version, and refuses an unsigned one when signatures are required', async () => {
    const signed = await echoCopy('signed', '1.0.0', release.privateKey);
    const unsigned = await echoCopy('unsigned', '1.1.0');
    const registry = await AlgorithmRegistry.load([signed, unsigned], trust([release.publicKey], false));
    expect(registry.list().map((a) => [a.manifest.version, a.signedBy])).toEqual([
      ['1.0.0', publicKeyId(release.publicKey)],
      ['1.1.0', undefined],
    ]);
    await expect(AlgorithmRegistry.load([signed, unsigned], trust([release.publicKey], true))).rejects.toMatchObject({ code: 'ARTIFACT_UNSIGNED', message: expect.stringContaining('echo@1.1.0') as string });
    // No keys configured at all: a signature cannot be checked, so it counts for nothing.
    expect((await AlgorithmRegistry.load([signed])).list()[0]?.signedBy).toBeUndefined();
  });

  it('refuses a signature by an untrusted key, and files changed after signing', async () => {
    const signed = await echoCopy('strange', '1.0.0', stranger.privateKey);
    await expect(AlgorithmRegistry.load([signed], trust([release.publicKey], false))).rejects.toMatchObject({ code: 'ARTIFACT_SIGNATURE_INVALID', message: expect.stringContaining('not trusted') as string });
    const altered = await echoCopy('altered', '1.0.0', release.privateKey);
    const entry = path.join(altered, 'lib/index.js');
    await writeFile(entry, `${await readFile(entry, 'utf8')}\n// one more line\n`);
    await expect(AlgorithmRegistry.load([altered], trust([release.publicKey], false))).rejects.toMatchObject({ code: 'ARTIFACT_SIGNATURE_INVALID', message: expect.stringContaining('changed after signing') as string });
    const forged = await echoCopy('forged', '1.0.0', release.privateKey);
    const sigFile = path.join(forged, SIGNATURE_FILE);
    await writeFile(sigFile, (await readFile(sigFile, 'utf8')).replace('echo@1.0.0', 'echo@9.9.9'));
    await expect(AlgorithmRegistry.load([forged], trust([release.publicKey], false))).rejects.toMatchObject({ code: 'ARTIFACT_SIGNATURE_INVALID' });
  });

  it('resolves only signed versions for a tenant that requires them', async () => {
    const registry = await AlgorithmRegistry.load([await echoCopy('r-signed', '1.0.0', release.privateKey), await echoCopy('r-unsigned', '1.1.0')], trust([release.publicKey], false));
    expect(registry.resolve('echo').manifest.version).toBe('1.1.0');
    expect(registry.resolve('echo', undefined, { signedOnly: true }).manifest.version).toBe('1.0.0');
    expect(() => registry.resolve('echo@1.1.x', undefined, { signedOnly: true })).toThrow(expect.objectContaining({ code: 'ARTIFACT_UNSIGNED' }) as Error);
    const policy = EntitlementPolicy.parse({ acme: { algorithms: ['echo'], requireSignedAlgorithms: true }, globex: { algorithms: ['echo'] } });
    expect([policy.requiresSignedAlgorithms('acme'), policy.requiresSignedAlgorithms('globex'), EntitlementPolicy.open().requiresSignedAlgorithms('acme')]).toEqual([true, false, false]);
  });

  it('resolves a canary version for the devices in its share only', async () => {
    const registry = await AlgorithmRegistry.load([await echoCopy('c-released', '1.0.0'), await echoCopy('c-canary', '1.1.0')]);
    const policy = EntitlementPolicy.parse({ acme: { algorithms: ['echo@^1'], canaries: { echo: { version: '1.1.0', percent: 10 } } } });
    const versions = Array.from({ length: 100 }, (_, i) => registry.resolve('echo@^1', policy.rangesFor('acme', `cath-lab-${i}`, 'echo')).manifest.version);
    const canaries = versions.filter((v) => v === '1.1.0').length;
    expect(canaries).toBeGreaterThan(0);
    expect(canaries).toBeLessThan(25);
    expect(versions.filter((v) => v === '1.0.0')).toHaveLength(100 - canaries);
  });

  it('serves a signed version to a tenant that requires signatures and refuses an unsigned one at admission', { timeout: 60_000 }, async () => {
    const keyFile = path.join(tmp.dir, 'release.pub');
    await writeFile(keyFile, release.publicKey.export({ type: 'spki', format: 'pem' }));
    const dataDir = path.join(tmp.dir, 'platform');
    const { platform, s3 } = await startPlatform(dataDir, {
      algorithmDirs: [await echoCopy('p-signed', '1.0.0', release.privateKey), await echoCopy('p-unsigned', '2.0.0')],
      algorithmTrust: { publicKeyFiles: [keyFile] },
      entitlements: { acme: { algorithms: ['echo'], requireSignedAlgorithms: true } },
    });
    const device = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
    try {
      const run = synthesizeXaRun({ seed: 5, rows: 32, columns: 32, frames: 4, bitsStored: 8 }).bytes;
      const ask = async (algorithm: string, uid: string): Promise<{ status: string; code: string | undefined; version: string | undefined; digest: string | undefined }> => {
        const request = await device.prepare(s3, 'arteria-runs', run, algorithm, uid);
        await device.publishRaw(encodePayload(request));
        const result = await device.next((r) => r.requestId === request.id);
        return { status: result.status, code: result.error?.code, version: result.algorithm?.version, digest: result.algorithm?.digest };
      };
      const signed = platform.registry.list().find((a) => a.manifest.version === '1.0.0')!;
      expect(await ask('echo@>=1', '1.2.826.0.1.3680043.10.11.1')).toEqual({ status: 'ok', code: undefined, version: '1.0.0', digest: signed.digest });
      expect(await ask('echo@^2', '1.2.826.0.1.3680043.10.11.2')).toMatchObject({ status: 'rejected', code: 'ARTIFACT_UNSIGNED' });
    } finally {
      await device.close();
      s3.destroy();
      await platform.close();
    }
  });
});
