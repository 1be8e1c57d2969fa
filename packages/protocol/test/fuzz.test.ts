import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArteriaError, ConfigV1, ProbeAnswerV1, ProbeV1, ReportedConfigV1, RequestV1, ResultV1, StatusV1, decodePayload, parseDeviceTopic, parseTraceparent, requestId } from '@arteria/protocol';

/** Bounded runs with a fixed seed: the same inputs every time, seconds in CI. */
const RUNS = { numRuns: 400, seed: 20261204 } as const;
const SCHEMAS = { RequestV1, ResultV1, StatusV1, ConfigV1, ReportedConfigV1, ProbeV1, ProbeAnswerV1 };
const PAYLOAD_CODES = new Set(['INVALID_JSON', 'INVALID_REQUEST', 'PAYLOAD_TOO_LARGE']);

/** Runs fn; passes when it returns or throws an ArteriaError with one of the codes, fails on anything else. */
function typedOnly(fn: () => unknown, codes: ReadonlySet<string>): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ArteriaError) || !codes.has(err.code)) throw new Error(`untyped failure: ${String(err)}`, { cause: err });
  }
}

const sha = 'a'.repeat(64);
const uri = 's3://arteria-runs/acme/cath-lab-1/1.2.3.4/x.dcm';
const request = {
  v: 1,
  id: requestId({ tenant: 'acme', device: 'cath-lab-1', instanceUid: '1.2.3.4', sha256: sha, algorithm: 'contrast-injection@^1', inputUris: [uri] }),
  tenant: 'acme',
  device: 'cath-lab-1',
  algorithm: 'contrast-injection@^1',
  instanceUid: '1.2.3.4',
  inputs: [{ uri, size: 10, sha256: sha, contentType: 'application/dicom' }],
  timings: { acquired: 1 },
};

/** Arbitrary JSON values, including ones shaped like a request with one field replaced or added. */
const jsonish = fc.oneof(
  fc.jsonValue(),
  fc.record({ key: fc.oneof(fc.constantFrom(...Object.keys(request)), fc.string()), value: fc.jsonValue() }).map(({ key, value }) => ({ ...request, [key]: value })),
);

/** The MQTT message parsers: whatever arrives, the sender gets a typed refusal or a parsed message. */
describe('fuzz: message parsers', () => {
  it.each(Object.entries(SCHEMAS))('decodePayload(%s) on arbitrary bytes and JSON', (_name, schema) => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), jsonish.map((v) => Buffer.from(JSON.stringify(v) ?? 'null'))), (bytes) => {
        typedOnly(() => decodePayload(schema, bytes), PAYLOAD_CODES);
      }),
      RUNS,
    );
  });

  it('a request mutated field by field is parsed or refused as INVALID_REQUEST', () => {
    expect(decodePayload(RequestV1, Buffer.from(JSON.stringify(request))).id).toBe(request.id);
    fc.assert(
      fc.property(jsonish, (value) => {
        typedOnly(() => decodePayload(RequestV1, Buffer.from(JSON.stringify(value) ?? 'null')), new Set(['INVALID_REQUEST', 'INVALID_JSON']));
      }),
      RUNS,
    );
  });

  it('topics and trace headers: typed refusal or a value', () => {
    const segment = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('arteria', 'v1', 'acme', 'cath-lab-1', 'requests', 'results', '+', '#', ''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(segment, { maxLength: 7 }).map((s) => s.join('/'))), (topic) => {
        typedOnly(() => parseDeviceTopic(topic), new Set(['INVALID_TOPIC']));
        typedOnly(() => parseTraceparent(topic), new Set());
      }),
      RUNS,
    );
  });
});
