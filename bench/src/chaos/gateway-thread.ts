import { parentPort, workerData } from 'node:worker_threads';
import type { GatewayOptionsInput } from '@arteria/gateway';

/** What the row hands the gateway's thread. */
export interface GatewayThreadInput {
  /** Added to this thread's wall clock (Date), as a gateway host whose clock is off. */
  clockOffsetMs: number;
  options: GatewayOptionsInput;
  runs: number;
  /** Time between two runs handed to the gateway. */
  spacingMs: number;
  /** First synthetic run's seed (unique per row, so runs differ from the simulated devices'). */
  seedBase: number;
  frames: number;
}

/** One run's outcome as the modality sees it. */
export type GatewayRunOutcome =
  | { kind: 'answered'; index: number; sopInstanceUid: string; requestId: string; status: string; recordHash?: string; sentAt: number; answeredAt: number }
  /** The gateway did not take the run (nothing stored): the modality keeps it and retries. */
  | { kind: 'refused'; index: number; sopInstanceUid: string; code: string; message: string; at: number }
  /** Taken, then no result before the caller stopped waiting. */
  | { kind: 'unanswered'; index: number; sopInstanceUid: string; code: string; message: string };

export type GatewayThreadMessage = { kind: 'done'; outcomes: GatewayRunOutcome[]; ignoredResults: number } | { kind: 'log'; line: string } | { kind: 'started' };

const input = workerData as GatewayThreadInput;
const port = parentPort;
if (port === null) throw new Error('gateway-thread runs as a worker thread');

// The skew must be in place before the gateway's modules read the clock. Monotonic time
// (performance.now, timers) stays true, as on a host whose wall clock is set wrong.
if (input.clockOffsetMs !== 0) {
  const RealDate = Date;
  const offset = input.clockOffsetMs;
  class SkewedDate extends RealDate {
    constructor(...args: [] | [string | number | Date]) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(args[0]);
    }
    static override now(): number {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}

// A gateway that lets an error escape would crash its host process: say where, then fail the row.
const escaped = (err: unknown): void => {
  port.postMessage({ kind: 'log', line: `escaped: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` } satisfies GatewayThreadMessage);
  throw err;
};
process.on('uncaughtException', escaped);
process.on('unhandledRejection', escaped);

const { Gateway } = await import('@arteria/gateway');
const { synthesizeXaRun } = await import('@arteria/dicom');
const { toArteriaError } = await import('@arteria/protocol');

let ignoredResults = 0;
const log = (line: string): void => port.postMessage({ kind: 'log', line } satisfies GatewayThreadMessage);
const gateway = new Gateway(input.options, {
  logger: {
    info: (message, fields) => {
      // A second copy of a result for a run already answered: counted as a duplicate delivery.
      if (!message.startsWith('ignoring a result')) return;
      ignoredResults += 1;
      log(`${message} ${JSON.stringify(fields ?? {})}`);
    },
    warn: (message, fields) => log(`warn: ${message} ${JSON.stringify(fields ?? {})}`),
    error: (message, fields) => log(`error: ${message} ${JSON.stringify(fields ?? {})}`),
  },
});
await gateway.start();
port.postMessage({ kind: 'started' } satisfies GatewayThreadMessage);
const started = performance.now();
const sends: Promise<GatewayRunOutcome>[] = [];
for (let index = 0; index < input.runs; index++) {
  const due = started + index * input.spacingMs;
  if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
  const { bytes, truth } = synthesizeXaRun({ seed: input.seedBase + index, rows: 32, columns: 32, frames: input.frames, bitsStored: 8 });
  const sentAt = Date.now();
  sends.push(
    gateway.send({ bytes, name: `run-${index}.dcm` }).then(
      (result): GatewayRunOutcome => ({ kind: 'answered', index, sopInstanceUid: truth.sopInstanceUid, requestId: result.requestId, status: result.status, ...(result.recordHash !== undefined && { recordHash: result.recordHash }), sentAt, answeredAt: Date.now() }),
      (err: unknown): GatewayRunOutcome => {
        const error = toArteriaError(err);
        // Once a run is taken, send() only fails with these; anything else refused it before storing.
        const taken = error.code === 'RESULT_TIMEOUT' || error.code === 'GATEWAY_NOT_RUNNING';
        return taken
          ? { kind: 'unanswered', index, sopInstanceUid: truth.sopInstanceUid, code: error.code, message: error.message }
          : { kind: 'refused', index, sopInstanceUid: truth.sopInstanceUid, code: error.code, message: error.message.slice(0, 300), at: Date.now() };
      },
    ),
  );
}
const outcomes = await Promise.all(sends);
// Late copies of results show up within a resend interval or two.
await new Promise((resolve) => setTimeout(resolve, 8_000));
await gateway.close();
port.postMessage({ kind: 'done', outcomes, ignoredResults } satisfies GatewayThreadMessage);
