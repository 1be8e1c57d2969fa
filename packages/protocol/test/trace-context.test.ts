import { describe, expect, it } from 'vitest';
import { RequestV1, ResultV1, TraceContext, formatTraceparent, parseTraceparent, traceContextFrom } from '@arteria/protocol';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const request = {
  v: 1,
  id: 'r0123456789abcdef0123456789abcde',
  tenant: 'acme',
  device: 'cath-lab-1',
  algorithm: 'contrast-injection@^1',
  instanceUid: '1.2.3',
  inputs: [{ uri: 's3://arteria-runs/acme/cath-lab-1/x.dcm', size: 1, sha256: 'a'.repeat(64), contentType: 'application/dicom' }],
  timings: {},
};

describe('W3C trace context on the wire', () => {
  it('parses and formats version-00 traceparents, refusing all-zero ids and other forms', () => {
    expect(parseTraceparent(TRACEPARENT)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 });
    expect(formatTraceparent({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 })).toBe(TRACEPARENT);
    for (const bad of [undefined, '', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`, TRACEPARENT.toUpperCase(), `01${TRACEPARENT.slice(2)}`, `${TRACEPARENT}-extra`]) {
      expect(parseTraceparent(bad)).toBeUndefined();
    }
  });

  it('keeps requests and results without a trace valid (older gateways and platforms), and validates one that is there', () => {
    expect(RequestV1.safeParse(request).success).toBe(true);
    expect(RequestV1.parse({ ...request, trace: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } }).trace).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
    expect(RequestV1.safeParse({ ...request, trace: { traceparent: 'not-a-traceparent' } }).success).toBe(false);
    expect(RequestV1.safeParse({ ...request, trace: { traceparent: TRACEPARENT, baggage: 'x' } }).success).toBe(false);
    expect(TraceContext.safeParse({ traceparent: TRACEPARENT, tracestate: 'a=1,'.repeat(40) }).success).toBe(false);
    expect(ResultV1.safeParse({ v: 1, requestId: request.id, tenant: 'acme', device: 'cath-lab-1', status: 'ok', timings: {}, trace: { traceparent: TRACEPARENT } }).success).toBe(true);
  });

  it('reads header-like values (MQTT 5 user properties): a bad traceparent means none, a bad tracestate is dropped', () => {
    expect(traceContextFrom(TRACEPARENT, 'vendor=abc')).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
    expect(traceContextFrom(` ${TRACEPARENT} `, undefined)).toEqual({ traceparent: TRACEPARENT });
    expect(traceContextFrom('garbage', 'vendor=abc')).toBeUndefined();
    expect(traceContextFrom(undefined, 'vendor=abc')).toBeUndefined();
    expect(traceContextFrom(TRACEPARENT, 'é'.repeat(3))).toEqual({ traceparent: TRACEPARENT });
  });
});
