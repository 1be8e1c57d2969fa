import { describe, expect, it } from 'vitest';
import { PartialResultV1, RunEndV1, RunOpenV1, SEGMENT_CONTENT_TYPE, SegmentV1, decodePayload, encodePayload, requestId, requestOfRunOpen, runDigest, segmentedRunId } from '@arteria/protocol';

const header = { uri: 's3://runs/acme/dev1/1.2/header', size: 1500, sha256: 'a'.repeat(64), contentType: 'application/dicom' as const };
const id = segmentedRunId({ tenant: 'acme', device: 'dev1', instanceUid: '1.2', algorithm: 'contrast-injection@^1', headerUri: header.uri, headerSha256: header.sha256 });
const open = { v: 1, kind: 'run-open', id, tenant: 'acme', device: 'dev1', algorithm: 'contrast-injection@^1', instanceUid: '1.2', header, timings: { acquired: 5 } };

describe('segmented-run messages', () => {
  it('round-trip through the payload codec; a run-open defaults to clinical priority', () => {
    const decoded = decodePayload(RunOpenV1, encodePayload(open));
    expect(decoded.priority).toBe('clinical');
    const segment = { v: 1, kind: 'segment', requestId: id, tenant: 'acme', device: 'dev1', index: 0, firstFrame: 0, frameCount: 8, object: { uri: 's3://runs/acme/dev1/1.2/s0', size: 8 * 1024 * 1024, sha256: 'b'.repeat(64), contentType: SEGMENT_CONTENT_TYPE } };
    expect(decodePayload(SegmentV1, encodePayload(segment))).toEqual(segment);
    const end = { v: 1, kind: 'run-end', requestId: id, tenant: 'acme', device: 'dev1', segments: 1, frames: 8, digest: runDigest(header.sha256, ['b'.repeat(64)]) };
    expect(decodePayload(RunEndV1, encodePayload(end))).toEqual(end);
  });

  it('refuse what cannot be a step of a run: an empty segment, a segment of another content type or an unknown encoding, a partial without an event key', () => {
    const segment = { v: 1, kind: 'segment', requestId: id, tenant: 'acme', device: 'dev1', index: 0, firstFrame: 0, frameCount: 0, object: { uri: 's3://runs/acme/dev1/1.2/s0', size: 10, sha256: 'b'.repeat(64), contentType: SEGMENT_CONTENT_TYPE } };
    expect(() => decodePayload(SegmentV1, encodePayload(segment))).toThrow(/frameCount/);
    expect(() => decodePayload(SegmentV1, encodePayload({ ...segment, frameCount: 1, object: { ...segment.object, contentType: 'application/dicom' } }))).toThrow(/object.contentType/);
    // Brotli is the one encoding a segment may have; its absence means the frames as they are.
    expect(decodePayload(SegmentV1, encodePayload({ ...segment, frameCount: 1, object: { ...segment.object, encoding: 'br' } })).object.encoding).toBe('br');
    expect(() => decodePayload(SegmentV1, encodePayload({ ...segment, frameCount: 1, object: { ...segment.object, encoding: 'gzip' } }))).toThrow(/object.encoding/);
    const partial = { v: 1, kind: 'partial', requestId: id, tenant: 'acme', device: 'dev1', seq: 0, framesSeen: 60, event: { type: 'contrast-arrival', frame: 55 }, algorithm: { name: 'contrast-injection', version: '1.0.0', digest: `sha256:${'c'.repeat(64)}` }, at: 1 };
    expect(() => decodePayload(PartialResultV1, encodePayload(partial))).toThrow(/event.key/);
    expect(decodePayload(PartialResultV1, encodePayload({ ...partial, event: { ...partial.event, key: 'contrast-arrival', ms: 3666.7 } })).event).toMatchObject({ ms: 3666.7 });
  });

  it('a run id is stable, and never that of a whole-file request for the same header', () => {
    expect(segmentedRunId({ tenant: 'acme', device: 'dev1', instanceUid: '1.2', algorithm: 'contrast-injection@^1', headerUri: header.uri, headerSha256: header.sha256 })).toBe(id);
    expect(requestId({ tenant: 'acme', device: 'dev1', instanceUid: '1.2', sha256: header.sha256, algorithm: 'contrast-injection@^1', inputUris: [header.uri] })).not.toBe(id);
    expect(requestOfRunOpen(RunOpenV1.parse(open))).toMatchObject({ id, inputs: [header], priority: 'clinical' });
  });

  it('the run digest commits to every object and their order', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect(runDigest(a, [a, b])).not.toBe(runDigest(a, [b, a]));
    expect(runDigest(a, [b])).toMatch(/^[0-9a-f]{64}$/);
  });
});
