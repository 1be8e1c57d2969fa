import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  ArteriaError,
  ERROR_CODES,
  MAX_PAYLOAD_BYTES,
  RequestV1,
  ResultV1,
  StatusV1,
  ConfigV1,
  decodePayload,
  deviceToken,
  deviceTopic,
  encodePayload,
  parseDeviceTopic,
  requestId,
  verifyDeviceToken,
  legacyDeviceToken,
  readDeviceToken,
} from '@arteria/protocol';

const sha = 'a'.repeat(64);
const parts = { tenant: 'acme', device: 'cath-lab-1', instanceUid: '1.2.3.4', sha256: sha, algorithm: 'contrast-injection@^1', inputUris: ['s3://arteria-runs/acme/cath-lab-1/1.2.3.4/x.dcm'] };

function validRequest(): RequestV1 {
  return {
    v: 1,
    id: requestId(parts),
    tenant: 'acme',
    device: 'cath-lab-1',
    algorithm: 'contrast-injection@^1',
    instanceUid: '1.2.3.4',
    inputs: [{ uri: 's3://arteria-runs/acme/cath-lab-1/1.2.3.4/x.dcm', size: 10, sha256: sha, contentType: 'application/dicom' }],
    priority: 'clinical',
    timings: { acquired: 1, uploaded: 2, published: 3 },
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ArteriaError ? err.code : 'not-an-ArteriaError';
  }
  return undefined;
}

describe('topics', () => {
  it('builds and parses every topic kind', () => {
    for (const kind of ['requests', 'results', 'status', 'config', 'config/reported'] as const) {
      const topic = deviceTopic({ tenant: 'acme', device: 'cath-lab-1' }, kind);
      expect(topic).toBe(`arteria/v1/acme/cath-lab-1/${kind}`);
      expect(parseDeviceTopic(topic)).toEqual({ tenant: 'acme', device: 'cath-lab-1', kind });
    }
  });

  it.each(['+', '#', 'a/b', '..', '.', '$sys', '', 'UPPER', 'a b', 'x'.repeat(65)])('rejects the id %j', (id) => {
    expect(codeOf(() => deviceTopic({ tenant: id, device: 'd1' }, 'requests'))).toBe('INVALID_TOPIC');
    expect(codeOf(() => deviceTopic({ tenant: 't1', device: id }, 'requests'))).toBe('INVALID_TOPIC');
  });

  it.each(['arteria/v2/a/b/requests', 'arteria/v1/a/b', 'arteria/v1/a/b/other', 'arteria/v1/a/+/requests', 'arteria/v1/a/#', 'x/v1/a/b/requests', 'arteria/v1/a/../requests'])(
    'rejects the topic %j',
    (topic) => {
      expect(codeOf(() => parseDeviceTopic(topic))).toBe('INVALID_TOPIC');
    },
  );
});

describe('request ids', () => {
  it('are stable for the same device, instance, content and algorithm', () => {
    expect(requestId(parts)).toBe(requestId({ ...parts }));
    expect(requestId(parts)).toMatch(/^r[0-9a-f]{31}$/);
  });

  it('differ when any part differs', () => {
    const base = requestId(parts);
    for (const change of [{ device: 'other' }, { tenant: 'other' }, { instanceUid: '1.2.3.5' }, { sha256: 'b'.repeat(64) }, { algorithm: 'x@1' }, { inputUris: ['s3://arteria-runs/acme/cath-lab-1/1.2.3.4/copy.dcm'] }]) {
      expect(requestId({ ...parts, ...change })).not.toBe(base);
    }
  });
});

describe('payloads', () => {
  it('round-trip a valid request', () => {
    const request = validRequest();
    expect(decodePayload(RequestV1, encodePayload(request))).toEqual(request);
  });

  it('name the error for invalid JSON, schema and size', () => {
    expect(codeOf(() => decodePayload(RequestV1, Buffer.from('{not json')))).toBe('INVALID_JSON');
    expect(codeOf(() => decodePayload(RequestV1, Buffer.from(JSON.stringify({ ...validRequest(), v: 2 }))))).toBe('INVALID_REQUEST');
    expect(codeOf(() => decodePayload(RequestV1, Buffer.from(JSON.stringify({ ...validRequest(), extra: 1 }))))).toBe('INVALID_REQUEST');
    expect(codeOf(() => decodePayload(RequestV1, Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 32)))).toBe('PAYLOAD_TOO_LARGE');
    expect(codeOf(() => encodePayload({ blob: 'x'.repeat(MAX_PAYLOAD_BYTES) }))).toBe('PAYLOAD_TOO_LARGE');
  });

  it('say which field is wrong', () => {
    const bad = { ...validRequest(), inputs: [{ ...validRequest().inputs[0], sha256: 'nothex' }] };
    expect(() => decodePayload(RequestV1, Buffer.from(JSON.stringify(bad)))).toThrow(/inputs\.0\.sha256/);
  });

  it('validate results, status and config', () => {
    const result: ResultV1 = { v: 1, requestId: 'r1', tenant: 'acme', device: 'd1', status: 'rejected', error: { code: 'UNKNOWN_ALGORITHM', message: 'no' }, timings: {} };
    expect(ResultV1.parse(result)).toEqual(result);
    expect(ResultV1.safeParse({ ...result, error: { code: 'NOT_A_CODE', message: '' } }).success).toBe(false);
    expect(StatusV1.parse({ v: 1, state: 'online', at: 1, inProcedure: true }).inProcedure).toBe(true);
    expect(ConfigV1.safeParse({ v: 1, version: 1, algorithms: ['contrast-injection@^1'] }).success).toBe(true);
    expect(ConfigV1.safeParse({ v: 1, version: 1, algorithms: ['no version'] }).success).toBe(false);
  });
});

describe('device credentials', () => {
  it('verify only the token of that device under that secret', () => {
    const token = deviceToken('secret-secret-secret', { tenant: 'acme', device: 'd1' });
    expect(verifyDeviceToken('secret-secret-secret', { tenant: 'acme', device: 'd1' }, token)).toBe(true);
    expect(verifyDeviceToken('secret-secret-secret', { tenant: 'acme', device: 'd2' }, token)).toBe(false);
    expect(verifyDeviceToken('other-secret-secret', { tenant: 'acme', device: 'd1' }, token)).toBe(false);
  });

  it('carry their generation and expiry, which cannot be changed without the secret', () => {
    const address = { tenant: 'acme', device: 'd1' };
    const issuedAt = Date.parse('2026-01-01T00:00:00Z');
    const token = deviceToken('secret-secret-secret', address, { generation: 3, issuedAt, expiresAt: issuedAt + 86_400_000 });
    expect(token).toMatch(/^at2\.3\.\d+\.\d+\.[A-Za-z0-9_-]{43}$/);
    expect(readDeviceToken('secret-secret-secret', address, token)).toEqual({ format: 'v2', generation: 3, issuedAt, expiresAt: issuedAt + 86_400_000 });
    expect(verifyDeviceToken('secret-secret-secret', address, token, issuedAt + 1_000)).toBe(true);
    expect(verifyDeviceToken('secret-secret-secret', address, token, issuedAt + 86_400_000)).toBe(false);
    // A later expiry (or another generation) written into the token breaks its MAC.
    const [prefix, generation, issued, expires, mac] = token.split('.');
    expect(readDeviceToken('secret-secret-secret', address, [prefix, generation, issued, String(Number(expires) + 86_400), mac].join('.'))).toBeUndefined();
    expect(readDeviceToken('secret-secret-secret', address, [prefix, '4', issued, expires, mac].join('.'))).toBeUndefined();
    // A token of the first releases: no expiry of its own (brokers decide whether to accept it).
    expect(readDeviceToken('secret-secret-secret', address, legacyDeviceToken('secret-secret-secret', address))).toEqual({ format: 'legacy' });
    // Bad options are a typed configuration error, never a plain one.
    expect(() => deviceToken('secret-secret-secret', address, { generation: -1 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
    expect(() => deviceToken('secret-secret-secret', address, { issuedAt, expiresAt: issuedAt })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
  });
});

describe('error codes', () => {
  it('are all documented in docs/protocol.md', async () => {
    const doc = await readFile(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const missing = Object.keys(ERROR_CODES).filter((code) => !doc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
