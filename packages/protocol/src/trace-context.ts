import { z } from 'zod';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), version 00:
 * `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lower case, ids not all zero.
 */
const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;

/** `tracestate`: vendor entries, at most 32 and 512 characters (the spec's limits). */
const TRACESTATE = /^[\x20-\x7e]{0,512}$/;

/**
 * The trace a request belongs to, carried by the request (from the device), the queued
 * task and the result (back to the device). MQTT 5 senders may carry the same values as
 * the user properties `traceparent` and `tracestate` instead.
 */
export const TraceContext = z.strictObject({
  traceparent: z.string().regex(TRACEPARENT, 'must be a W3C traceparent, 00-<trace id>-<parent id>-<flags>'),
  tracestate: z
    .string()
    .regex(TRACESTATE, 'must be a W3C tracestate (printable ASCII, at most 512 characters)')
    .refine((s) => s.split(',').length <= 32, 'must have at most 32 entries')
    .optional(),
});
export type TraceContext = z.infer<typeof TraceContext>;

export interface ParsedTraceparent {
  traceId: string;
  spanId: string;
  /** Bit 0: sampled. */
  flags: number;
}

/** The parts of a traceparent header, or undefined when it is not a valid version-00 one. */
export function parseTraceparent(value: string | undefined): ParsedTraceparent | undefined {
  const match = value === undefined ? null : TRACEPARENT.exec(value.trim());
  if (match === null) return undefined;
  const [, traceId = '', spanId = '', flags = '00'] = match;
  return { traceId, spanId, flags: Number.parseInt(flags, 16) };
}

export function formatTraceparent(parts: ParsedTraceparent): string {
  return `00-${parts.traceId}-${parts.spanId}-${(parts.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * A trace context from header-like values (MQTT 5 user properties, HTTP headers): undefined
 * when the traceparent is absent or malformed (W3C: then start a new trace); a malformed
 * tracestate is dropped, the traceparent kept.
 */
export function traceContextFrom(traceparent: string | undefined, tracestate: string | undefined): TraceContext | undefined {
  if (parseTraceparent(traceparent) === undefined || traceparent === undefined) return undefined;
  const state = tracestate === undefined ? undefined : TraceContext.shape.tracestate.safeParse(tracestate.trim());
  return { traceparent: traceparent.trim(), ...(state?.success === true && state.data !== undefined && state.data !== '' ? { tracestate: state.data } : {}) };
}
