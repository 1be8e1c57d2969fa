import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, smallRun, startServersWithResponder, type Responder, type Servers } from './helpers.js';

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

afterAll(async () => servers?.close());

/** A restarted gateway's sources come again (the watched folder, the DICOM port): an answer that came meanwhile is not a reason to run them twice. */
describe('a run sent again right after its answer', () => {
  it('gets that answer again: the same file unchanged, or (de-identifying) the same instance', async () => {
    const file = join(servers.directory, 'again-1.dcm');
    await writeFile(file, smallRun(601));
    await using plain = new Gateway(gatewayOptions(servers, 'again-1'), { logger: memoryLogger() });
    await plain.start();
    const first = await plain.send(file);
    const again = await plain.send(file);
    expect(again.requestId).toBe(first.requestId);
    expect(responder.requestsOf('again-1')).toHaveLength(1);
    // Other bytes at the same path (a name used again) are another run.
    await writeFile(file, smallRun(602));
    expect((await plain.send(file)).requestId).not.toBe(first.requestId);
    expect(responder.requestsOf('again-1')).toHaveLength(2);

    await using deidentifying = new Gateway(gatewayOptions(servers, 'again-2', { deidentification: { enabled: true } }), { logger: memoryLogger() });
    await deidentifying.start();
    const bytes = smallRun(603);
    const answered = await deidentifying.send({ bytes, name: 'run.dcm' });
    expect((await deidentifying.send({ bytes, name: 'copy.dcm' })).requestId).toBe(answered.requestId);
    expect(responder.requestsOf('again-2')).toHaveLength(1);
  });

  it('runs again when answerAgainWithinMs is 0', async () => {
    const file = join(servers.directory, 'again-3.dcm');
    await writeFile(file, smallRun(604));
    await using gateway = new Gateway(gatewayOptions(servers, 'again-3', { answerAgainWithinMs: 0 }), { logger: memoryLogger() });
    await gateway.start();
    const first = await gateway.send(file);
    const second = await gateway.send(file);
    expect(responder.requestsOf('again-3')).toHaveLength(2);
    expect(second.requestId).not.toBe(first.requestId); // another entry, another object: another request
  });

  it('leaves the responder without errors', () => {
    expect(responder.errors).toEqual([]);
  });
});
