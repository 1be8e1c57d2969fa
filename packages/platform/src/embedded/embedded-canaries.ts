import { s3ObjectBucket, type createS3Client } from '@arteria/engine-s3';
import { CanaryGuard, type EntitlementPolicy } from '@arteria/ingest';
import type { RequestLedger } from '@arteria/ports';
import type { Logger } from '@arteria/telemetry';
import { ArtifactStore } from '@arteria/worker';

export interface EmbeddedCanaryParts {
  ledger: RequestLedger;
  /** The policy ingest admits with: a withdrawal applies to it at once. */
  policy: EntitlementPolicy;
  /** The embedded store's client and bucket: withdrawals are kept under its `_algorithms/` prefix, beside the runs. */
  store: ReturnType<typeof createS3Client>;
  bucket: string;
  logger?: Logger | undefined;
}

/**
 * Canary rollback in the embedded mode, as cluster ingest does it: every `intervalMs` the
 * newest `window` ledger results are judged against each canary's rollback bounds, and a
 * canary that regresses is withdrawn at once, stored in the embedded store (so the next
 * `arteria up` on the same data folder still withdraws it) and logged as a security
 * event. Undefined when no canary has bounds.
 */
export async function startEmbeddedCanaryGuard(parts: EmbeddedCanaryParts, settings: { intervalMs: number; window: number }, onError: (error: Error) => void): Promise<CanaryGuard | undefined> {
  if (!parts.policy.canaries().some((c) => c.rollback !== undefined)) return undefined;
  const guard = new CanaryGuard({
    ledger: parts.ledger,
    policy: parts.policy,
    store: new ArtifactStore(s3ObjectBucket(parts.store, parts.bucket)),
    instance: 'embedded',
    window: settings.window,
    intervalMs: settings.intervalMs,
    ...(parts.logger ? { logger: parts.logger } : {}),
    onError,
  });
  await guard.start();
  return guard;
}
