// A segmented run the gateway gives up after its run-open (withdrawn by its sender, or
// RUN_INCOMPLETE) is abandoned on the platform (RunAbandonV1): published once its follower
// stopped, resent until the platform answers, across a restart, and never after the answer.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, startServersWithResponder, type Responder, type Servers } from './helpers.js';

const ROWS = 32;
const FRAMES = 40;
const FRAME_BYTES = ROWS * ROWS;

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});
afterAll(async () => {
  await servers?.close();
});

/** A run's file with only its first `frames` frames written (the rest never comes). */
async function truncatedRun(name: string, seed: number, frames: number): Promise<string> {
  const bytes = synthesizeXaRun({ seed, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 }).bytes;
  const file = join(servers.directory, name);
  await writeFile(file, bytes.subarray(0, bytes.length - (FRAMES - frames) * FRAME_BYTES));
  return file;
}

const quietly = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('segmented runs given up by the gateway are abandoned on the platform', () => {
  it('a run withdrawn after its segments were announced: abandoned, resent until answered (across a restart), then never again', async () => {
    const device = 'seg-abandon-restart';
    const options = gatewayOptions(servers, device, { resendIntervalMs: 400 });
    const abandons = () => responder.abandons.filter((a) => a.device === device);
    const opened = () => responder.segmented.filter((s) => s.device === device);
    responder.silentAbandons.add(device);
    const file = await truncatedRun('withdrawn.dcm', 31, 20);
    const first = new Gateway(options, { logger: memoryLogger() });
    await first.start();
    const withdraw = new AbortController();
    // The run ends by its withdrawal only: with the default 10 s, a busy machine could let the
    // gateway give the stopped file up (RUN_INCOMPLETE) before the test withdraws it.
    const sending = first.sendFollow(file, { framesPerSegment: 10, stableAfterMs: 600_000, signal: withdraw.signal });
    await vi.waitFor(() => expect(opened().filter((s) => s.kind === 'segment')).toHaveLength(2), { timeout: 10_000, interval: 20 });
    withdraw.abort(new Error('the operator stopped the run'));
    await expect(sending).rejects.toThrow();
    await vi.waitFor(() => expect(abandons().length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 20 }); // unanswered: resent
    const open = opened().find((s) => s.kind === 'run-open');
    expect(abandons()[0]).toMatchObject({ kind: 'run-abandon', requestId: open?.kind === 'run-open' ? open.id : 'missing', reason: { code: 'WITHDRAWN' } });
    expect(abandons()[0]?.reason.message).toContain('the operator stopped the run');
    await first.close();

    // Started again on the same outbox: the abandon goes again, until it is answered.
    const before = abandons().length;
    const logger = memoryLogger();
    const second = new Gateway(options, { logger });
    await second.start();
    await vi.waitFor(() => expect(abandons().length).toBeGreaterThan(before), { timeout: 10_000, interval: 20 });
    responder.silentAbandons.delete(device);
    await vi.waitFor(() => expect(logger.lines.some((l) => l.message === 'the platform answered an abandoned run')).toBe(true), { timeout: 10_000, interval: 20 });
    const answered = abandons().length;
    await quietly(1_500);
    expect(abandons()).toHaveLength(answered);
    await second.close();

    const third = new Gateway(options, { logger: memoryLogger() });
    await third.start();
    try {
      await quietly(1_500);
      expect(abandons()).toHaveLength(answered);
      expect(opened().filter((s) => s.kind === 'segment')).toHaveLength(2); // nothing of the run announced again
      expect(third.stats()).toMatchObject({ pending: 0 });
    } finally {
      await third.close();
    }
  }, 60_000);

  it('a run that stopped short for good (RUN_INCOMPLETE) is abandoned once, with its reason, and the answer ends it', async () => {
    const device = 'seg-abandon-incomplete';
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, device, { resendIntervalMs: 400 }), { logger });
    await gateway.start();
    try {
      const file = await truncatedRun('incomplete.dcm', 32, 15);
      // 3 s stable: the last 5 frames are cut as segment 1 250 ms after segment 0 is; with 800 ms, a
      // busy machine slow to cut segment 0 could reach the give-up before that flush.
      await expect(gateway.sendFollow(file, { framesPerSegment: 10, stableAfterMs: 3_000 })).rejects.toMatchObject({ code: 'RUN_INCOMPLETE' });
      const abandons = () => responder.abandons.filter((a) => a.device === device);
      await vi.waitFor(() => expect(logger.lines.some((l) => l.message === 'the platform answered an abandoned run')).toBe(true), { timeout: 10_000, interval: 20 });
      await quietly(1_200);
      expect(abandons()).toHaveLength(1);
      expect(abandons()[0]?.reason.code).toBe('RUN_INCOMPLETE');
      // Everything the run had announced came before its abandon.
      expect(responder.segmented.filter((s) => s.device === device).map((s) => (s.kind === 'segment' ? s.index : s.kind))).toEqual(['run-open', 0, 1]);
    } finally {
      await gateway.close();
    }
  }, 60_000);
});
