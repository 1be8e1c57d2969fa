import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { DicomIntake, ResultDelivery, type DeliveredResult } from '@arteria/gateway-site';
import { exec, echo, startStoreScp, type StoreScp, Responder, freePort, memoryLogger, objectBytes, startServers, type Servers, PHI, items, phiRun, readDataset, value } from '@arteria/testing';
import { gatewayOptions } from './support.js';

const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.77';
const SERIES = `${STUDY}.2`;

let servers: Servers;
let responder: Responder;
let pacs: StoreScp;
let pacsFolder: string;

beforeAll(async () => {
  servers = await startServers();
  responder = await Responder.start(servers);
  pacsFolder = join(servers.directory, 'pacs');
  await mkdir(pacsFolder, { recursive: true });
  pacs = await startStoreScp(pacsFolder);
});

afterAll(async () => {
  await pacs?.close();
  await responder?.close();
  await servers?.close();
});

// The whole-file path (streamWhileArriving: false); streaming while the C-STORE arrives, the default, is dimse-stream.test.ts.
describe('DICOM in and results back on-site', () => {
  it('takes a run by C-STORE, sends it de-identified, and stores a re-identified SR at the PACS', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-1', { deidentification: { enabled: true } }), { logger });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder: join(servers.directory, 'incoming'), stableMs: 300, streamWhileArriving: false }, logger);
    // A local system listening for results.
    const posted: { result: { requestId: string }; original: { studyInstanceUid: string; patientId: string } }[] = [];
    const webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        posted.push(JSON.parse(body) as (typeof posted)[number]);
        res.end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/results`;
    const delivery = new ResultDelivery(
      gateway,
      { folder: join(servers.directory, 'reports'), node: { host: '127.0.0.1', port: pacs.port, calledAeTitle: pacs.aeTitle, callingAeTitle: 'ARTERIA', timeoutMs: 5_000 }, webhookUrl, attempts: 3, retryDelayMs: 100 },
      logger,
    );
    const delivered: DeliveredResult[] = [];
    delivery.onDelivered((d) => delivered.push(d));
    await gateway.start();
    await intake.start();
    try {
      expect(await echo(intake.receiver.port, 'ARTERIA')).toBe(true);
      expect(await echo(intake.receiver.port, 'SOMEONE-ELSE')).toBe(false); // wrong called AE title

      const files = [1, 2].map((n) => join(servers.directory, `modality-${n}.dcm`));
      await writeFile(files[0] ?? '', phiRun({ seed: 11, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.1` }));
      await writeFile(files[1] ?? '', phiRun({ seed: 12, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.2`, references: `${SERIES}.1` }));
      await exec('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), ...files]);

      // One run (the series), two instances: both computed, both reported.
      await intake.idle();
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (delivered.length >= 2) {
            clearInterval(check);
            resolve();
          }
        }, 20);
      });
      await delivery.idle();

      // Nothing identifying left the site.
      const requests = responder.requestsOf('dimse-1');
      expect(requests).toHaveLength(2);
      const studyUids = new Set<string>();
      for (const { request } of requests) {
        const uploaded = await objectBytes(servers.s3, request.inputs[0]?.uri ?? '');
        for (const phi of [...PHI, STUDY, SERIES]) expect(uploaded.includes(phi), `${phi} was uploaded`).toBe(false);
        studyUids.add(String(value(readDataset(uploaded).ds, '0020000D')));
        // The pixels arrived intact (received as a stream, copied through de-identification).
        const originals = await Promise.all(files.map((f) => readFile(f)));
        expect(originals.some((o) => o.subarray(o.length - 512).equals(uploaded.subarray(uploaded.length - 512)))).toBe(true);
        expect(request.instanceUid.startsWith('2.25.')).toBe(true);
      }
      expect(studyUids.size).toBe(1); // one pseudonymous study for the series

      // The PACS got SRs in the original study, about the original instances.
      const received = (await readdir(pacsFolder)).filter((f) => f.startsWith('SR'));
      expect(received).toHaveLength(2);
      const referenced = new Set<string>();
      for (const name of received) {
        const path = join(pacsFolder, name);
        const { ds } = readDataset(await readFile(path));
        expect(value(ds, '0020000D')).toBe(STUDY);
        expect(value(ds, '00100020')).toBe('MRN-0042');
        expect((value(ds, '00100010') as { Alphabetic: string }).Alphabetic).toBe('Doe^Jane');
        expect(value(ds, '00080050')).toBe('ACC-7781');
        const evidence = items(items(items(ds, '0040A375')[0], '00081115')[0], '00081199')[0];
        referenced.add(String(value(evidence, '00081155')));
        const finding = items(ds, '0040A730').find((item) => value(items(item, '0040A043')[0], '00080100') === '121071');
        expect(String(value(finding, '0040A160'))).toMatch(/contrast-injection 1\.0\.0/);
        // dciodvfy (dicom3tools) validates the SR against its IOD: no errors.
        const { stderr } = await exec('dciodvfy', [path]).catch((err: { stderr: string }) => err);
        expect(stderr.split('\n').filter((line) => line.startsWith('Error'))).toEqual([]);
      }
      expect([...referenced].sort()).toEqual([`${SERIES}.1`, `${SERIES}.2`]);
      // The received files are gone once answered.
      expect(await readdir(join(servers.directory, 'incoming'))).toEqual([]);
      // Local systems got both results, in the original study's terms.
      expect(posted.map((p) => p.original.studyInstanceUid)).toEqual([STUDY, STUDY]);
      expect(posted.map((p) => p.original.patientId)).toEqual(['MRN-0042', 'MRN-0042']);
      expect(new Set(posted.map((p) => p.result.requestId))).toEqual(new Set(requests.map((r) => r.request.id)));
    } finally {
      await intake.close();
      await delivery.close();
      await gateway.close();
      await new Promise<void>((resolve) => webhook.close(() => resolve()));
    }
  });

  it('refuses instances with Out of Resources while the outbox is full, and receives again once it has room', async () => {
    responder.silent.add('dimse-2');
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-2', { deidentification: { enabled: true }, maxOutboxEntries: 1 }), { logger });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder: join(servers.directory, 'incoming-2'), stableMs: 100, streamWhileArriving: false }, logger);
    await gateway.start();
    await intake.start();
    try {
      const file = (n: number): string => join(servers.directory, `full-${n}.dcm`);
      for (const n of [1, 2]) await writeFile(file(n), phiRun({ seed: 20 + n, studyInstanceUid: `${STUDY}.${n}`, seriesInstanceUid: `${SERIES}.${n}`, sopInstanceUid: `${SERIES}.${n}.1` }));
      const store = (n: number): Promise<string> =>
        exec('storescu', ['-v', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file(n)]).then(
          ({ stderr }) => stderr,
          (err: { stderr: string }) => err.stderr,
        );
      expect(await store(1)).toMatch(/Received Store Response \(Success\)/);
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (responder.requestsOf('dimse-2').length > 0) {
            clearInterval(check);
            resolve();
          }
        }, 20);
      });
      expect(gateway.stats().pending).toBe(1);
      expect(await store(2)).toMatch(/Received Store Response \(Refused: OutOfResources\)/);
      // The platform answers: room again.
      responder.silent.delete('dimse-2');
      const first = responder.requestsOf('dimse-2')[0]?.request;
      if (first !== undefined) await responder.answer(first);
      await intake.idle();
      expect(gateway.stats().pending).toBe(0);
      expect(await store(2)).toMatch(/Received Store Response \(Success\)/);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('refuses at the door an instance the site policy refuses (an error status of its own, saying why); nothing is kept or uploaded', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-4', { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, 'incoming-4');
    // Streamed while it arrives (the default): the refusal comes when the whole object is in.
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 100 }, logger);
    await gateway.start();
    await intake.start();
    try {
      const file = join(servers.directory, 'burned-in.dcm');
      await writeFile(file, phiRun({ seed: 41, studyInstanceUid: `${STUDY}.4`, seriesInstanceUid: `${SERIES}.4`, sopInstanceUid: `${SERIES}.4.1`, burnedIn: true }));
      const outcome = await exec('storescu', ['-d', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]).catch((err: { stdout: string; stderr: string }) => err);
      // The modality hears it, with the reason in the response's Error Comment.
      const said = `${outcome.stdout}${outcome.stderr}`;
      expect(said).toMatch(/DIMSE Status *: 0xc124: Error: Cannot understand/);
      expect(said).toMatch(/may show burned-in annotation \(0028,0301\): refused \(site policy\)/);
      await intake.idle();
      await intake.receiver.settled();
      expect(await readdir(folder)).toEqual([]);
      expect(await readdir(`${folder}.failed`).catch(() => [])).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 300)); // anything on its way would have been asked for by now
      expect(responder.requestsOf('dimse-4')).toEqual([]);
      expect(logger.lines.some((l) => l.message === 'C-STORE failed' && l.fields?.code === 'DEIDENTIFICATION_REFUSED')).toBe(true);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('joins a second send of the same file to the de-identified run already on its way', async () => {
    responder.silent.add('dimse-3');
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-3', { deidentification: { enabled: true } }), { logger });
    await gateway.start();
    try {
      const file = join(servers.directory, 'twice.dcm');
      await writeFile(file, phiRun({ seed: 31, studyInstanceUid: `${STUDY}.3`, seriesInstanceUid: `${SERIES}.3`, sopInstanceUid: `${SERIES}.3.1` }));
      const originals: unknown[] = [];
      gateway.on('result', (e) => originals.push(e.original));
      const first = gateway.send(file);
      await responder.until((seen) => seen.some((s) => s.request.device === 'dimse-3'));
      const second = gateway.send(file);
      await vi.waitFor(() => expect(logger.lines.some((l) => l.message === 'run is already in the outbox; waiting for its result')).toBe(true), { timeout: 20_000, interval: 10 });
      expect(gateway.stats()).toMatchObject({ sent: 1, pending: 1 });
      responder.silent.delete('dimse-3');
      const request = responder.requestsOf('dimse-3')[0]?.request;
      if (request !== undefined) await responder.answer(request);
      const [a, b] = await Promise.all([first, second]);
      expect(a.requestId).toBe(b.requestId);
      expect(originals).toEqual([expect.objectContaining({ sopInstanceUid: `${SERIES}.3.1`, patientId: 'MRN-0042' })]);
    } finally {
      await gateway.close();
    }
  });

  it('keeps a report the PACS could not take and delivers it after a restart', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-5', { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, 'reports-5');
    const down = { host: '127.0.0.1', port: await freePort(), calledAeTitle: 'PACS', callingAeTitle: 'ARTERIA', timeoutMs: 2_000 };
    const first = new ResultDelivery(gateway, { folder, node: down, attempts: 2, retryDelayMs: 20 }, logger);
    const failed = new Promise<unknown>((resolve) => first.onError(resolve));
    await gateway.start();
    try {
      const result = await gateway.send({ bytes: phiRun({ seed: 51, studyInstanceUid: `${STUDY}.5`, seriesInstanceUid: `${SERIES}.5`, sopInstanceUid: `${SERIES}.5.1` }), name: 'late.dcm' });
      expect(await failed).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      await first.close();
      expect((await readdir(folder)).sort()).toEqual([`${result.requestId}.dcm`, `${result.requestId}.json`, 'sent']);

      // The next start (the PACS is back) finishes the delivery.
      const up = { ...down, port: pacs.port };
      const second = new ResultDelivery(gateway, { folder, node: up, attempts: 2, retryDelayMs: 20 }, logger);
      const delivered = new Promise<DeliveredResult>((resolve) => second.onDelivered(resolve));
      await second.start();
      const { original, stored } = await delivered;
      expect(stored).toBe(true);
      expect(original.studyInstanceUid).toBe(`${STUDY}.5`);
      expect(await readdir(folder)).toEqual(['sent']);
      await second.close();
    } finally {
      await gateway.close();
    }
  });

  it('sends a multi-frame instance as soon as it is stored, without waiting for its series to go quiet', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-8', { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, 'incoming-8');
    await gateway.start();
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 600_000, streamWhileArriving: false }, logger);
    try {
      await intake.start();
      const file = join(servers.directory, 'multi-frame.dcm');
      await writeFile(file, phiRun({ seed: 81, studyInstanceUid: `${STUDY}.8`, seriesInstanceUid: `${SERIES}.8`, sopInstanceUid: `${SERIES}.8.1` }));
      await exec('storescu', ['-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);
      // A ten-minute quiet period would hold a series; a whole multi-frame instance does not wait for it.
      await responder.until((seen) => seen.some((s) => s.request.device === 'dimse-8'));
      await intake.idle();
      await vi.waitFor(async () => expect(await readdir(folder)).toEqual([]), { timeout: 10_000, interval: 20 });
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('sends a multi-frame instance stored before a crash at once on the next start, without waiting for its series to go quiet', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-9', { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, 'incoming-9');
    const series = join(folder, `${SERIES}.9`);
    await mkdir(series, { recursive: true });
    await writeFile(join(series, `${SERIES}.9.1.dcm`), phiRun({ seed: 91, studyInstanceUid: `${STUDY}.9`, seriesInstanceUid: `${SERIES}.9`, sopInstanceUid: `${SERIES}.9.1` }));
    await gateway.start();
    // A ten-minute quiet period is for series of single frames; the recovered instance is a whole run.
    const after = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 600_000, streamWhileArriving: false }, logger);
    try {
      await after.start();
      await vi.waitFor(() => expect(responder.requestsOf('dimse-9')).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await vi.waitFor(async () => expect(await readdir(folder)).toEqual([]), { timeout: 10_000, interval: 20 });
    } finally {
      await after.close();
      await gateway.close();
    }
  });

  it('sends instances stored before a crash (acknowledged, still in the receive folder) once it is back', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-7', { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, 'incoming-7');
    // What a gateway killed right after answering Success leaves: the instance in its series folder.
    const series = join(folder, `${SERIES}.7`);
    await mkdir(series, { recursive: true });
    await writeFile(join(series, `${SERIES}.7.1.dcm`), phiRun({ seed: 71, studyInstanceUid: `${STUDY}.7`, seriesInstanceUid: `${SERIES}.7`, sopInstanceUid: `${SERIES}.7.1` }));
    await gateway.start();
    const after = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 50, streamWhileArriving: false }, logger);
    try {
      await after.start();
      await responder.until((seen) => seen.some((s) => s.request.device === 'dimse-7'));
      await vi.waitFor(async () => expect(await readdir(folder)).toEqual([]), { timeout: 10_000, interval: 20 });
    } finally {
      await after.close();
      await gateway.close();
    }
  });

  it('a gateway stopped while its run waited for the answer reports it once after the restart, not twice', async () => {
    const logger = memoryLogger();
    const folder = join(servers.directory, 'incoming-10');
    const reports = join(servers.directory, 'reports-10');
    const node = { host: '127.0.0.1', port: pacs.port, calledAeTitle: 'PACS', callingAeTitle: 'ARTERIA', timeoutMs: 5_000 };
    const file = join(servers.directory, 'restart-10.dcm');
    await writeFile(file, phiRun({ seed: 101, studyInstanceUid: `${STUDY}.10`, seriesInstanceUid: `${SERIES}.10`, sopInstanceUid: `${SERIES}.10.1` }));
    const reportsOfStudy = async (): Promise<number> => {
      let count = 0;
      for (const name of (await readdir(pacsFolder)).filter((f) => f.startsWith('SR'))) if (value(readDataset(await readFile(join(pacsFolder, name))).ds, '0020000D') === `${STUDY}.10`) count += 1;
      return count;
    };
    // The platform takes the request; the gateway stops before the answer comes.
    responder.silent.add('dimse-10');
    const before = new Gateway(gatewayOptions(servers, 'dimse-10', { deidentification: { enabled: true } }), { logger });
    await before.start();
    const intake = new DicomIntake(before, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 50, streamWhileArriving: false }, logger);
    try {
      await intake.start();
      await exec('storescu', ['-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);
      await vi.waitFor(() => expect(responder.requestsOf('dimse-10')).toHaveLength(1), { timeout: 10_000, interval: 20 });
    } finally {
      await intake.close();
      await before.close();
      responder.silent.delete('dimse-10');
    }
    // Back: the resumed request is answered, and the received instance, still on disk, is sent again.
    const after = new Gateway(gatewayOptions(servers, 'dimse-10', { deidentification: { enabled: true } }), { logger });
    const delivery = new ResultDelivery(after, { folder: reports, node, attempts: 3, retryDelayMs: 50 }, logger);
    const again = new DicomIntake(after, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 50, streamWhileArriving: false }, logger);
    try {
      await delivery.start();
      await after.start();
      await again.start();
      await vi.waitFor(async () => expect(await readdir(folder)).toEqual([]), { timeout: 15_000, interval: 20 });
      await again.idle();
      await vi.waitFor(async () => expect(await reportsOfStudy()).toBe(1), { timeout: 10_000, interval: 50 });
      await new Promise((resolve) => setTimeout(resolve, 500)); // a second report would be on its way by now
      expect(await reportsOfStudy()).toBe(1);
      expect(new Set(responder.requestsOf('dimse-10').map((r) => r.request.id)).size).toBe(1);
    } finally {
      await again.close();
      await delivery.close();
      await after.close();
    }
  });

  it('accepts associations only from the configured modalities', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'dimse-6', { deidentification: { enabled: true } }), { logger });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder: join(servers.directory, 'incoming-6'), stableMs: 100, streamWhileArriving: false, callingAeTitles: ['CATHLAB'] }, logger);
    await gateway.start();
    await intake.start();
    try {
      expect(await echo(intake.receiver.port, 'ARTERIA')).toBe(false); // calls itself PROBE
      expect(await exec('echoscu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port)]).then(() => true)).toBe(true);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('leaves the responder without errors', () => {
    expect(responder.errors).toEqual([]);
  });
});
