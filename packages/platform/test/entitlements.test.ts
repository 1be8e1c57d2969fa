import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { encodePayload } from '@arteria/protocol';
import { EntitlementPolicy } from '@arteria/ingest';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

const POLICY = {
  acme: {
    algorithms: ['echo@1.0.x', 'throws'],
    devices: { 'cath-lab-2': ['echo'] },
  },
};

describe('entitlements: which algorithm versions a tenant and device may run', () => {
  it('gives each device its ranges: the tenant\'s, its own list instead, nothing for an unlisted tenant', () => {
    const policy = EntitlementPolicy.parse(POLICY);
    expect(policy.rangesFor('acme', 'cath-lab-1', 'echo')).toEqual(['1.0.x']);
    expect(policy.rangesFor('acme', 'cath-lab-1', 'throws')).toEqual(['*']);
    expect(policy.rangesFor('acme', 'cath-lab-1', 'balloon-inflation')).toEqual([]);
    expect(policy.rangesFor('acme', 'cath-lab-2', 'echo')).toEqual(['*']);
    expect(policy.rangesFor('acme', 'cath-lab-2', 'throws')).toEqual([]);
    expect(policy.rangesFor('globex', 'x-1', 'echo')).toEqual([]);
    expect(EntitlementPolicy.open().rangesFor('globex', 'x-1', 'echo')).toBeUndefined();
  });

  it('gives a canary version to a stable share of the devices and the released version to the rest', () => {
    const policy = EntitlementPolicy.parse({ acme: { algorithms: ['echo@^1 || ^2'], canaries: { echo: { version: '1.1.0', percent: 10 } } } });
    const devices = Array.from({ length: 200 }, (_, i) => `cath-lab-${i}`);
    const inCanary = devices.filter((d) => EntitlementPolicy.inCanary('acme', d, 10));
    // A hash, not a count: about a tenth of a fleet, the same devices on every call.
    expect(inCanary.length).toBeGreaterThan(10);
    expect(inCanary.length).toBeLessThan(30);
    expect(devices.filter((d) => EntitlementPolicy.inCanary('acme', d, 10))).toEqual(inCanary);
    // Growing the share keeps every device already in it.
    expect(inCanary.every((d) => EntitlementPolicy.inCanary('acme', d, 50))).toBe(true);
    const canary = inCanary[0]!;
    const released = devices.find((d) => !inCanary.includes(d))!;
    expect(policy.rangesFor('acme', canary, 'echo')).toEqual(['^1 || ^2']);
    expect(policy.rangesFor('acme', released, 'echo')).toEqual(['^1 <1.1.0 || ^2 <1.1.0']);
    expect(() => EntitlementPolicy.parse({ acme: { algorithms: [], canaries: { echo: { version: '1.1', percent: 10 } } } })).toThrow(/canaries\.echo\.version/);
  });

  it('refuses a malformed policy with CONFIG_INVALID naming the place', async () => {
    expect(() => EntitlementPolicy.parse({ acme: { algorithms: ['echo@not a range'] } })).toThrow(/acme\.algorithms\.0.*semver/);
    expect(() => EntitlementPolicy.parse({ 'Bad Tenant': { algorithms: [] } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
    expect(() => EntitlementPolicy.parse({ acme: { algorithms: [], extra: 1 } })).toThrow(/extra/);
    const tmp = await tempDir('entitlements');
    try {
      const file = path.join(tmp.dir, 'entitlements.json');
      await writeFile(file, '{ not json');
      await expect(EntitlementPolicy.load(file)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('not JSON') as string });
      await expect(EntitlementPolicy.load(path.join(tmp.dir, 'none.json'))).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      await writeFile(file, JSON.stringify(POLICY));
      expect((await EntitlementPolicy.load(file)).rangesFor('acme', 'cath-lab-1', 'echo')).toEqual(['1.0.x']);
      expect((await EntitlementPolicy.load('')).rangesFor('acme', 'cath-lab-1', 'echo')).toBeUndefined();
    } finally {
      await tmp.remove();
    }
  });

  it('answers a request for an algorithm not enabled for the device with ALGORITHM_NOT_ENABLED, and runs the enabled ones', async () => {
    const tmp = await tempDir('entitled');
    const { platform, s3 } = await startPlatform(tmp.dir, { algorithmDirs: [fixtureAlgorithm('echo'), fixtureAlgorithm('throws')], entitlements: POLICY });
    const lab1 = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
    const lab2 = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-2');
    try {
      const run = synthesizeXaRun({ seed: 3, rows: 32, columns: 32, frames: 4, bitsStored: 8 }).bytes;
      const ask = async (device: TestDevice, algorithm: string, uid: string): Promise<{ status: string; code: string | undefined; version: string | undefined }> => {
        const request = await device.prepare(s3, 'arteria-runs', run, algorithm, uid);
        await device.publishRaw(encodePayload(request));
        const result = await device.next((r) => r.requestId === request.id);
        return { status: result.status, code: result.error?.code, version: result.algorithm?.version };
      };
      expect(await ask(lab1, 'echo@^1', '1.2.826.0.1.3680043.10.9.1')).toEqual({ status: 'ok', code: undefined, version: '1.0.0' });
      expect(await ask(lab2, 'echo@^1', '1.2.826.0.1.3680043.10.9.2')).toMatchObject({ status: 'ok' });
      const refused = await ask(lab2, 'throws@^1', '1.2.826.0.1.3680043.10.9.3');
      expect(refused).toEqual({ status: 'rejected', code: 'ALGORITHM_NOT_ENABLED', version: undefined });
      expect(platform.refusals.summary().byCode).toEqual({ ALGORITHM_NOT_ENABLED: 1 });
      expect((await platform.status()).requests).toMatchObject({ accepted: 2, refused: 1 });
    } finally {
      await lab1.close();
      await lab2.close();
      s3.destroy();
      await platform.close();
      await tmp.remove();
    }
  });
});
