import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHeader, synthesizeXaRun } from '@arteria/dicom';
import { encodePayload } from '@arteria/protocol';
import { TestDevice } from '@arteria/testing';
import { SECRET, startPlatformWithDevice, type PlatformWithDevice } from './support/platform.js';

const RESEARCH_SECRET = 'research-tenant-secret-0123456789';
const bucket = 'arteria-runs';
const geometry = { rows: 64, columns: 64, frames: 12, bitsStored: 8 } as const;

describe('embedded platform: inputs that do not declare de-identification', () => {
  let setup: PlatformWithDevice;
  let research: TestDevice;

  beforeAll(async () => {
    setup = await startPlatformWithDevice('deid', (dir) => ({ dataDir: dir, overrides: { tenants: { acme: SECRET, research: RESEARCH_SECRET }, allowIdentifiedInputs: ['research'] } }));
    research = await TestDevice.connect(setup.platform.mqttUrl, RESEARCH_SECRET, 'research', 'lab-1');
  });
  afterAll(async () => {
    await research?.close();
    await setup?.close();
  });

  it('rejects an identified run DEIDENTIFICATION_MISSING before the algorithm sees it, and runs the same run de-identified', async () => {
    const identified = synthesizeXaRun({ seed: 31, ...geometry, declareDeidentified: false });
    expect(readHeader(identified.bytes)).toMatchObject({ patientIdentityRemoved: '', deidentificationMethod: '' });
    const { device, s3 } = setup;
    const refused = await device.prepare(s3, bucket, identified.bytes, 'echo@^1', '1.2.826.0.1.3680043.10.1.31');
    await device.publishRaw(encodePayload(refused));
    const rejected = await device.next((r) => r.requestId === refused.id);
    expect(rejected).toMatchObject({ status: 'rejected', error: { code: 'DEIDENTIFICATION_MISSING' } });
    expect(rejected.error?.message).toMatch(/Patient Identity Removed \(0012,0062\): absent/);
    expect(rejected.output).toBeUndefined();

    const deidentified = synthesizeXaRun({ seed: 31, ...geometry });
    expect(readHeader(deidentified.bytes)).toMatchObject({ patientIdentityRemoved: 'YES', deidentificationMethod: expect.stringMatching(/Synthetic/) as unknown });
    const accepted = await device.prepare(s3, bucket, deidentified.bytes, 'echo@^1', '1.2.826.0.1.3680043.10.1.32');
    await device.publishRaw(encodePayload(accepted));
    expect(await device.next((r) => r.requestId === accepted.id)).toMatchObject({ status: 'ok' });
  });

  it('runs an identified run for a tenant that allows identified inputs', async () => {
    const identified = synthesizeXaRun({ seed: 33, ...geometry, declareDeidentified: false });
    const request = await research.prepare(setup.s3, bucket, identified.bytes, 'echo@^1', '1.2.826.0.1.3680043.10.1.33');
    await research.publishRaw(encodePayload(request));
    expect(await research.next((r) => r.requestId === request.id)).toMatchObject({ status: 'ok' });
  });
});
