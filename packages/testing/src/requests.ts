import { RequestV1, requestId, type ResultV1 } from '@arteria/protocol';
import type { AcceptedRequest } from '@arteria/ports';

export interface TestRequestOptions {
  tenant?: string;
  device?: string;
  algorithm?: string;
  sha256?: string;
  size?: number;
  timings?: RequestV1['timings'];
}

/** A valid request for one input under its device's prefix, its id derived as devices derive it. */
export function testRequest(instanceUid: string, options: TestRequestOptions = {}): RequestV1 {
  const { tenant = 'h1', device = 'cl-1', algorithm = 'contrast-injection@^1', sha256 = 'c'.repeat(64), size = 1024 } = options;
  const uri = `s3://runs/${tenant}/${device}/${instanceUid}.dcm`;
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant, device, instanceUid, sha256, algorithm, inputUris: [uri] }),
    tenant,
    device,
    algorithm,
    instanceUid,
    inputs: [{ uri, size, sha256, contentType: 'application/dicom' }],
    timings: options.timings ?? { acquired: 1_000, uploaded: 1_100, published: 1_200 },
  });
}

/** What ingest records for an admitted request. */
export const acceptedOf = (request: RequestV1, acceptedAt = 2_000): AcceptedRequest => ({ requestId: request.id, tenant: request.tenant, device: request.device, algorithm: request.algorithm, acceptedAt, request });

/** A result for `request`: `ok` with `output` and an algorithm identity, or a typed error. */
export function testResult(request: RequestV1, status: ResultV1['status'], output: unknown = { frames: 1 }): ResultV1 {
  return {
    v: 1,
    requestId: request.id,
    tenant: request.tenant,
    device: request.device,
    status,
    ...(status === 'ok'
      ? { algorithm: { name: 'contrast-injection', version: '1.2.0', digest: `sha256:${'d'.repeat(64)}` }, output }
      : { error: { code: status === 'rejected' ? 'CHECKSUM_MISMATCH' : 'ALGORITHM_CRASHED', message: 'no' } }),
    timings: { ...request.timings, computed: 3_000, resultPublished: 3_001 },
  };
}
