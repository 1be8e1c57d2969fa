import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { ResultDelivery, type DeliveredResult } from '@arteria/gateway-site';
import type { EmbeddedPlatform } from '@arteria/platform';
import { gatewayWithIntake, quiet, startDicomPlatform } from './support/dicom-platform.js';
import { freePort } from '@arteria/testing';

const exec = promisify(execFile);
const SECRET = 'dicom-e2e-tenant-secret-0123456789';

async function echo(port: number, aeTitle: string): Promise<boolean> {
  return exec('echoscu', ['-aec', aeTitle, '127.0.0.1', String(port)]).then(
    () => true,
    () => false,
  );
}

describe('a run from the modality to the PACS, through the embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let stopPlatform: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, platform, close: stopPlatform } = await startDicomPlatform('arteria-dicom-e2e-', SECRET));
  });
  afterAll(async () => stopPlatform());

  it('storescu -> gateway (de-identified) -> platform computes -> SR re-identified at storescp', async () => {
    // The PACS: DCMTK storescp.
    const pacsDir = path.join(dir, 'pacs');
    await mkdir(pacsDir);
    const pacsPort = await freePort();
    const pacs = spawn('storescp', ['-aet', 'PACS', '-od', pacsDir, '+uf', String(pacsPort)], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await echo(pacsPort, 'PACS')); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));

    const { gateway, intake } = gatewayWithIntake(platform, SECRET, 'cathlab-dicom', path.join(dir, 'gateway'));
    const delivery = new ResultDelivery(
      gateway,
      { folder: path.join(dir, 'gateway', 'reports'), node: { host: '127.0.0.1', port: pacsPort, calledAeTitle: 'PACS', callingAeTitle: 'ARTERIA', timeoutMs: 5_000 }, attempts: 3, retryDelayMs: 100 },
      quiet,
    );
    const delivered = new Promise<DeliveredResult>((resolve) => delivery.onDelivered(resolve));
    await gateway.start();
    await intake.start();
    try {
      const synthetic = synthesizeXaRun({ seed: 42, rows: 96, columns: 96, frames: 30, frameRateHz: 15, bitsStored: 12, contrast: { startFrame: 8, peakFrame: 15, endFrame: 26 }, patient: { name: 'Doe^Jane', id: 'MRN-0042', birthDate: '19510704', sex: 'F' } });
      const file = path.join(dir, 'run.dcm');
      await writeFile(file, synthetic.bytes);
      await exec('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);

      const { result, original, stored } = await delivered;
      expect(result.status).toBe('ok');
      expect((result.output as { contrastDetected: boolean }).contrastDetected).toBe(true);
      expect(stored).toBe(true);
      expect(original.studyInstanceUid).toBe(synthetic.truth.studyInstanceUid);

      // What the platform saw was de-identified: another instance UID, no patient.
      const entry = await platform.ledger.get(result.requestId);
      expect(entry?.request?.instanceUid).not.toBe(synthetic.truth.sopInstanceUid);
      expect(entry?.request?.instanceUid.startsWith('2.25.')).toBe(true);

      // The SR at the PACS is in the original study, for the original patient, about the original instance.
      const [srName] = (await readdir(pacsDir)).filter((f) => f.startsWith('SR'));
      const sr = dicomParser.parseDicom(await readFile(path.join(pacsDir, srName ?? '')));
      expect(sr.string('x0020000d')).toBe(synthetic.truth.studyInstanceUid);
      expect(sr.string('x00100010')).toBe('Doe^Jane');
      expect(sr.string('x00100020')).toBe('MRN-0042');
      const evidence = sr.elements.x0040a375?.items?.[0]?.dataSet?.elements.x00081115?.items?.[0]?.dataSet?.elements.x00081199?.items?.[0]?.dataSet;
      expect(evidence?.string('x00081155')).toBe(synthetic.truth.sopInstanceUid);
      const { stderr } = await exec('dciodvfy', [path.join(pacsDir, srName ?? '')]).catch((err: { stderr: string }) => err);
      expect(stderr.split('\n').filter((line) => line.startsWith('Error'))).toEqual([]);
    } finally {
      await intake.close();
      await delivery.close();
      await gateway.close();
      pacs.kill('SIGTERM');
    }
  });
});
