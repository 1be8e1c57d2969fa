// A run sent while it is acquired that the gateway gives up (its file stopped short for
// good: RUN_INCOMPLETE) is abandoned on the embedded platform: the platform records and
// answers RUN_ABANDONED once and releases the run (checkpoint, the run held by its workers).
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { Gateway } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { platformGatewayOptions } from './support/dicom-platform.js';

const SECRET = 'abandon-e2e-tenant-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));
const ROWS = 64;
const FRAMES = 90;
const FRAME_BYTES = ROWS * ROWS;

describe('a segmented run the gateway gives up, against the embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-abandon-e2e-'));
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET }, algorithmDirs: [algorithmDir] });
  }, 60_000);
  afterAll(async () => {
    await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('RUN_INCOMPLETE at the gateway: the platform answers RUN_ABANDONED once and releases the run', async () => {
    const lines: { message: string; fields?: Record<string, unknown> }[] = [];
    const keep = (message: string, fields?: Record<string, unknown>): void => void lines.push({ message, ...(fields ? { fields } : {}) });
    const gateway = new Gateway({ ...platformGatewayOptions(platform, SECRET, 'cath-lab-7', path.join(dir, 'outbox.db')), deidentification: { enabled: false }, resendIntervalMs: 500 }, { logger: { info: keep, warn: keep, error: keep } });
    await gateway.start();
    const checkpoints = new SqliteRunCheckpoints({ path: path.join(dir, 'platform', 'platform.db') });
    try {
      const bytes = synthesizeXaRun({ seed: 61, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 }).bytes;
      const pixelsAt = bytes.length - FRAMES * FRAME_BYTES;
      const file = path.join(dir, 'truncated.dcm');
      await writeFile(file, bytes.subarray(0, pixelsAt + 20 * FRAME_BYTES));
      const sending = gateway.sendFollow(file, { framesPerSegment: 10, stableAfterMs: 2_000 });
      sending.catch(() => undefined); // its rejection is asserted below, not an unhandled one meanwhile
      // The file keeps growing, a frame every 0.5 s (well inside the 2 s the gateway waits), until
      // the platform holds the run (opened, segments folded); then it stops short for good. On a
      // busy machine the platform may take longer than 2 s to hold it: a file that stopped at once
      // could be given up before that.
      let written = 20;
      let appending = Promise.resolve();
      const grow = setInterval(() => {
        if (written >= FRAMES - 10) return;
        const frame = bytes.subarray(pixelsAt + written * FRAME_BYTES, pixelsAt + (written + 1) * FRAME_BYTES);
        written += 1;
        appending = appending.then(() => appendFile(file, frame));
      }, 500);
      try {
        await vi.waitFor(() => expect(platform.segmentedRunsInHand).toBe(1), { timeout: 20_000, interval: 50 });
      } finally {
        clearInterval(grow);
        await appending;
      }
      await expect(sending).rejects.toMatchObject({ code: 'RUN_INCOMPLETE' });

      await vi.waitFor(() => expect(lines.some((l) => l.message === 'the platform answered an abandoned run')).toBe(true), { timeout: 20_000, interval: 50 });
      const answered = lines.filter((l) => l.message === 'the platform answered an abandoned run');
      const requestId = String(answered[0]?.fields?.requestId);
      expect(answered[0]?.fields).toMatchObject({ status: 'failed', code: 'RUN_ABANDONED', reason: 'RUN_INCOMPLETE' });
      const recorded = await platform.ledger.get(requestId);
      expect(recorded).toMatchObject({ state: 'completed', result: { status: 'failed', error: { code: 'RUN_ABANDONED' } } });
      await vi.waitFor(async () => expect(await checkpoints.get(requestId)).toBeUndefined(), { timeout: 10_000, interval: 50 });
      await vi.waitFor(() => expect(platform.segmentedRunsInHand).toBe(0), { timeout: 10_000, interval: 50 });
      // Answered once: no resend after it, no second answer.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(lines.filter((l) => l.message === 'the platform answered an abandoned run')).toHaveLength(1);
      expect(lines.filter((l) => l.message === 'abandoned a segmented run on the platform')).toHaveLength(1);
      expect(lines.filter((l) => l.message === 'ignoring a result the outbox is not waiting for')).toEqual([]);
    } finally {
      await checkpoints.close();
      await gateway.close();
    }
  }, 90_000);
});
