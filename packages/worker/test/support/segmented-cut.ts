// A contrast-injection run cut as a gateway sends it while acquiring: the tasks of its steps
// and the objects they name, for tests that drive segmented runs without a broker or store.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { synthesizeXaRun } from '@arteria/dicom';
import { SEGMENT_CONTENT_TYPE, epochNow, requestOfRunOpen, runDigest, segmentedRunId, type InputRef, type SegmentRef } from '@arteria/protocol';
import type { InputSource, TaskV1 } from '@arteria/ports';
import type { RegisteredAlgorithm } from '@arteria/worker';

export const CONTRAST_INJECTION = fileURLToPath(new URL('../../../../algorithms/contrast-injection', import.meta.url));
const LAYOUT = { rows: 64, columns: 64, frames: 96 };
const FRAMES_PER_SEGMENT = 6;

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export interface CutRun {
  bytes: Uint8Array;
  open: TaskV1;
  segments: TaskV1[];
  end: TaskV1;
  objects: Map<string, Uint8Array>;
}

/** A run cut as a gateway sends it: its tasks (open, one per segment, end) and its objects. */
export function cut(seed: number, uid: string, algorithm: RegisteredAlgorithm): CutRun {
  const bytes = synthesizeXaRun({ seed, ...LAYOUT, bitsStored: 8, contrast: { startFrame: 58, peakFrame: 74, endFrame: 92 } }).bytes;
  const tenant = 'acme';
  const device = 'cath-lab-1';
  const frameBytes = LAYOUT.rows * LAYOUT.columns;
  const pixelsAt = bytes.length - frameBytes * LAYOUT.frames;
  const prefix = `s3://runs/${tenant}/${device}/${uid}`;
  const objects = new Map<string, Uint8Array>();
  const header = bytes.subarray(0, pixelsAt);
  const headerRef: InputRef = { uri: `${prefix}/header`, size: header.length, sha256: sha(header), contentType: 'application/dicom' };
  objects.set(headerRef.uri, header);
  const spec = 'contrast-injection@^1';
  const id = segmentedRunId({ tenant, device, instanceUid: uid, algorithm: spec, headerUri: headerRef.uri, headerSha256: headerRef.sha256 });
  const now = epochNow();
  const request = requestOfRunOpen({ v: 1, kind: 'run-open', id, tenant, device, algorithm: spec, instanceUid: uid, header: headerRef, priority: 'clinical', timings: { acquired: now, uploaded: now, published: now } });
  const task = (segmented: TaskV1['segmented']): TaskV1 => ({ v: 1, request, algorithm: algorithm.ref, segmented });
  const segments: TaskV1[] = [];
  const shas: string[] = [];
  for (let first = 0, index = 0; first < LAYOUT.frames; first += FRAMES_PER_SEGMENT, index++) {
    const pixels = bytes.subarray(pixelsAt + first * frameBytes, pixelsAt + (first + FRAMES_PER_SEGMENT) * frameBytes);
    const object: SegmentRef = { uri: `${prefix}/s${index}`, size: pixels.length, sha256: sha(pixels), contentType: SEGMENT_CONTENT_TYPE };
    objects.set(object.uri, pixels);
    shas.push(object.sha256);
    segments.push(task({ phase: 'segment', index, firstFrame: first, frameCount: FRAMES_PER_SEGMENT, object }));
  }
  const end = task({ phase: 'end', segments: segments.length, frames: LAYOUT.frames, digest: runDigest(headerRef.sha256, shas) });
  return { bytes, open: task({ phase: 'open' }), segments, end, objects };
}

/** Inputs read from the objects of the runs cut so far (segmented steps read whole objects). */
export function objectInputs(objects: Map<string, Uint8Array>): InputSource {
  return {
    fetch: (ref) => {
      const bytes = objects.get(ref.uri);
      if (bytes === undefined) throw new Error(`no object ${ref.uri}`);
      return Promise.resolve(Buffer.from(bytes));
    },
    stream: () => {
      throw new Error('segmented steps read whole objects');
    },
  };
}
