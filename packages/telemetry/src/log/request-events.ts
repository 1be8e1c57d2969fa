import { STAGES, type AlgorithmRef, type Timings } from '@arteria/protocol';
import type { Logger } from './logger.js';

/**
 * The points of a request's life that each get one log line. `delivered`: its result
 * was published to the device (whatever its status); `failed`: that result is a failure
 * or a rejection by the worker; `refused`: turned away at admission, never queued.
 */
export const REQUEST_EVENTS = ['admitted', 'refused', 'leased', 'computed', 'delivered', 'failed', 'retried', 'dead-lettered'] as const;
export type RequestEvent = (typeof REQUEST_EVENTS)[number];

export interface RequestEventFields {
  requestId: string;
  tenant: string;
  device: string;
  /** `name@version` once resolved, else the spec the device asked for. */
  algorithm?: AlgorithmRef | string;
  /** The error code of a refusal, failure, retry or dead letter. */
  code?: string;
  /** What went wrong, for the operator; never request content. */
  reason?: string;
  /** Deliveries of the task so far (worker events). */
  deliveries?: number;
  timings?: Timings;
  /** Result status on `delivered`. */
  status?: string;
  /** The W3C trace id of the request, when it has one: the same id its spans carry. */
  traceId?: string | undefined;
}

const LEVEL: Record<RequestEvent, 'info' | 'warn' | 'error'> = {
  admitted: 'info',
  refused: 'warn',
  leased: 'info',
  computed: 'info',
  delivered: 'info',
  failed: 'warn',
  retried: 'warn',
  'dead-lettered': 'error',
};

/**
 * Milliseconds from each stage to the next one present (same spans as the
 * `arteria_stage_duration_seconds` histogram: `computed` is the algorithm's run).
 */
export function stageDurations(timings: Timings): Partial<Record<keyof Timings, number>> {
  const out: Partial<Record<keyof Timings, number>> = {};
  let previous: number | undefined;
  for (const stage of STAGES) {
    const at = timings[stage];
    if (at === undefined) continue;
    if (previous !== undefined) out[stage] = Math.max(0, Math.round((at - previous) * 10) / 10);
    previous = at;
  }
  return out;
}

/**
 * One line for one event of a request. Only identifiers, codes and durations are
 * written: never the request's inputs, the result's output or anything from the DICOM.
 */
export function logRequestEvent(logger: Logger, event: RequestEvent, fields: RequestEventFields): void {
  const level = LEVEL[event];
  if (!logger.isLevelEnabled(level)) return;
  const { algorithm, timings, reason, traceId, ...rest } = fields;
  const line: Record<string, unknown> = { event, ...rest };
  if (traceId !== undefined) line.traceId = traceId;
  if (reason !== undefined) line.reason = reason.slice(0, 500);
  if (algorithm !== undefined) line.algorithm = typeof algorithm === 'string' ? algorithm : `${algorithm.name}@${algorithm.version}`;
  if (timings !== undefined) line.durationsMs = stageDurations(timings);
  logger[level](line, `request ${event}`);
}
