import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { type Responder, gatewayOptions, memoryLogger, startServersWithResponder, type Servers } from './helpers.js';
import { PHI, phiRun } from '@arteria/testing';

const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240901.7';
const SERIES = `${STUDY}.2`;
const INSTANCE = `${SERIES}.1`;

/** With the default settings, what the gateway writes on its own disk and logs carries no identifier. */
describe('PHI stays out of gateway logs and spool file names', () => {
  let servers: Servers;
  let responder: Responder;
  beforeAll(async () => {
    ({ servers, responder } = await startServersWithResponder());
  });
  afterAll(async () => servers.close());

  it('a PHI-laden run from a file named after the patient: the spool file and every log line hold none of it', async () => {
    const logger = memoryLogger();
    const options = gatewayOptions(servers, 'phi-lab', { deidentification: { enabled: true } });
    await using gateway = new Gateway(options, { logger });
    await gateway.start();
    const file = join(servers.directory, `Doe^Jane_${INSTANCE}.dcm`);
    await writeFile(file, phiRun({ seed: 8, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: INSTANCE }));
    const spooled: string[] = [];
    gateway.on('entry', (e) => {
      if (e.state === 'pending') spooled.push(...readdirSync(`${options.outboxPath}.spool`));
    });
    const result = await gateway.send(file);
    expect(result.status).toBe('ok');
    expect(responder.requestsOf('phi-lab')).toHaveLength(1);
    expect(spooled).toHaveLength(1);
    const written = JSON.stringify({ spooled, lines: logger.lines });
    for (const secret of [...PHI, 'Doe^Jane', STUDY, SERIES, INSTANCE]) expect(written.includes(secret), `${secret} in ${written}`).toBe(false);
  });
});
