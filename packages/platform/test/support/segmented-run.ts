import { createHash } from 'node:crypto';
import { brotliCompressSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SEGMENT_CONTENT_TYPE, encodePayload, epochNow, runDigest, segmentedRunId, type RunEndV1, type RunOpenV1, type SegmentEncoding, type SegmentRef, type SegmentV1 } from '@arteria/protocol';
import type { TestDevice } from '@arteria/testing';

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * A Part 10 run cut as a gateway sends it while it is acquired: the header object (the file
 * up to Pixel Data's value) and segments of `framesPerSegment` frames, each uploaded and
 * announced by `send*`, stored as frames or compressed (`encoding`). The run's pixels are
 * the last element of the file (as the synthesizer writes them).
 */
export class SegmentedRun {
  readonly open: RunOpenV1;
  readonly segments: SegmentV1[] = [];
  readonly end: RunEndV1;
  readonly #objects = new Map<string, Uint8Array>();

  constructor(
    readonly device: TestDevice,
    readonly bucket: string,
    bytes: Uint8Array,
    layout: { rows: number; columns: number; frames: number; bytesPerSample: number },
    algorithm: string,
    instanceUid: string,
    framesPerSegment: number,
    encoding?: SegmentEncoding,
  ) {
    const frameBytes = layout.rows * layout.columns * layout.bytesPerSample;
    const pixelsAt = bytes.length - frameBytes * layout.frames;
    const prefix = `${device.tenant}/${device.device}/${instanceUid}`;
    const header = bytes.subarray(0, pixelsAt);
    const headerRef = { uri: `s3://${bucket}/${prefix}/header`, size: header.length, sha256: sha(header), contentType: 'application/dicom' as const };
    this.#objects.set(headerRef.uri, header);
    const id = segmentedRunId({ tenant: device.tenant, device: device.device, instanceUid, algorithm, headerUri: headerRef.uri, headerSha256: headerRef.sha256 });
    const now = epochNow();
    this.open = { v: 1, kind: 'run-open', id, tenant: device.tenant, device: device.device, algorithm, instanceUid, header: headerRef, priority: 'clinical', timings: { acquired: now, uploaded: now, published: now } };
    for (let first = 0, index = 0; first < layout.frames; first += framesPerSegment, index++) {
      const count = Math.min(framesPerSegment, layout.frames - first);
      const pixels = bytes.subarray(pixelsAt + first * frameBytes, pixelsAt + (first + count) * frameBytes);
      const stored = encoding === 'br' ? brotliCompressSync(pixels) : pixels;
      const object: SegmentRef = { uri: `s3://${bucket}/${prefix}/s${index}`, size: stored.length, sha256: sha(stored), contentType: SEGMENT_CONTENT_TYPE, ...(encoding === undefined ? {} : { encoding }) };
      this.#objects.set(object.uri, stored);
      this.segments.push({ v: 1, kind: 'segment', requestId: id, tenant: device.tenant, device: device.device, index, firstFrame: first, frameCount: count, object });
    }
    const digest = runDigest(headerRef.sha256, this.segments.map((s) => s.object.sha256));
    this.end = { v: 1, kind: 'run-end', requestId: id, tenant: device.tenant, device: device.device, segments: this.segments.length, frames: layout.frames, digest };
  }

  /** Segment `index` as it would be announced had its object held `bytes` (stored with the others by upload()). */
  storedAs(index: number, bytes: Uint8Array, encoding?: SegmentEncoding): SegmentV1 {
    const segment = this.segments[index];
    if (segment === undefined) throw new Error(`the run has no segment ${index}`);
    const uri = `${segment.object.uri}-other`;
    this.#objects.set(uri, bytes);
    return { ...segment, object: { uri, size: bytes.length, sha256: sha(bytes), contentType: SEGMENT_CONTENT_TYPE, ...(encoding === undefined ? {} : { encoding }) } };
  }

  get id(): string {
    return this.open.id;
  }

  /** Uploads every object of the run (header and segments). */
  async upload(s3: S3Client): Promise<void> {
    for (const [uri, bytes] of this.#objects) {
      const key = uri.slice(`s3://${this.bucket}/`.length);
      await s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes }));
    }
  }

  /** Uploads every object, then sends the run-open, the segments (these, in this order) and the end. */
  async sendAll(s3: S3Client, segments: readonly SegmentV1[] = this.segments): Promise<void> {
    await this.upload(s3);
    for (const message of [this.open, ...segments, this.end]) await this.send(message);
  }

  async send(message: RunOpenV1 | SegmentV1 | RunEndV1): Promise<void> {
    await this.device.publishRaw(encodePayload(message));
  }
}
