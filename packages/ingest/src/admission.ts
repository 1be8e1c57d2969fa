import { ArteriaError, requestId, splitAlgorithmSpec, type AlgorithmRef, type DeviceAddress, type RequestV1 } from '@arteria/protocol';
import { assertInputInScope } from '@arteria/ports';
import type { EntitlementPolicy } from './entitlements.js';

export interface AlgorithmResolver {
  /**
   * Throws UNKNOWN_ALGORITHM when nothing matches, ALGORITHM_NOT_ENABLED when only versions
   * outside `enabled` (ranges; undefined: any) match, ARTIFACT_UNSIGNED when `signedOnly`
   * and only unsigned versions match.
   */
  resolve(spec: string, enabled?: readonly string[], options?: { signedOnly?: boolean }): { ref: AlgorithmRef; manifest?: { resources?: { gpu?: boolean } } };
}

/** The version admission pinned, and whether its manifest asks for a GPU (its tasks' pool). */
export interface AdmittedAlgorithm {
  ref: AlgorithmRef;
  gpu: boolean;
}

/** What admission consults; the same for a device's request and an operator's replay. */
export interface AdmissionRules {
  algorithms: AlgorithmResolver;
  /** Bucket the devices upload into; inputs elsewhere are refused. */
  bucket: string;
  /** Which algorithm versions each tenant and device may run; none: every one. */
  entitlements?: EntitlementPolicy | undefined;
  now: () => number;
}

/**
 * The checks every request passes before it is queued: the sender speaks for itself and
 * its own storage, the id matches the content, an entitled algorithm version matches
 * (pinned here), and the deadline has not passed. Throws the typed refusal.
 */
export function admit(rules: AdmissionRules, from: DeviceAddress, request: RequestV1): AdmittedAlgorithm {
  authorize(rules.bucket, from, request);
  return pinAlgorithm(rules, request);
}

/** The entitled algorithm version a request resolves to, pinned; DEADLINE_EXCEEDED once its deadline has passed. */
export function pinAlgorithm(rules: AdmissionRules, request: RequestV1): AdmittedAlgorithm {
  const enabled = rules.entitlements?.rangesFor(request.tenant, request.device, splitAlgorithmSpec(request.algorithm).name);
  const signedOnly = rules.entitlements?.requiresSignedAlgorithms(request.tenant) ?? false;
  const resolved = rules.algorithms.resolve(request.algorithm, enabled, { signedOnly });
  if (request.deadline !== undefined && request.deadline < rules.now()) {
    throw new ArteriaError('DEADLINE_EXCEEDED', `deadline ${new Date(request.deadline).toISOString()} has passed`);
  }
  return { ref: resolved.ref, gpu: resolved.manifest?.resources?.gpu === true };
}

function authorize(bucket: string, from: DeviceAddress, request: RequestV1): void {
  if (request.tenant !== from.tenant || request.device !== from.device) {
    throw new ArteriaError('NOT_AUTHORIZED', `request names ${request.tenant}/${request.device} but was published by ${from.tenant}/${from.device}`);
  }
  const prefix = `s3://${bucket}/${request.tenant}/${request.device}/`;
  for (const input of request.inputs) {
    if (!input.uri.startsWith(prefix)) {
      throw new ArteriaError('NOT_AUTHORIZED', `input ${input.uri} is outside the device's own storage prefix ${prefix}`);
    }
    assertInputInScope(input, request);
  }
  const expected = requestId({
    tenant: request.tenant,
    device: request.device,
    instanceUid: request.instanceUid,
    sha256: request.inputs[0]?.sha256 ?? '',
    algorithm: request.algorithm,
    inputUris: request.inputs.map((input) => input.uri),
  });
  if (request.id !== expected) {
    throw new ArteriaError('INVALID_REQUEST', 'id: does not match requestId(tenant, device, instanceUid, inputs[0].sha256, algorithm, input URIs)');
  }
  if (request.inputs.length > 1) {
    throw new ArteriaError('INVALID_REQUEST', `inputs: this platform version runs one input per request (got ${request.inputs.length})`);
  }
}
