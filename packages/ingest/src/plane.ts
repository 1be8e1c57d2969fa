import { EntitlementPolicy } from './entitlements.js';
import { Ingest, type IngestDeps } from './ingest.js';
import { AdmissionRateLimiter } from './rate-limit.js';

export interface IngestPlaneSettings {
  bucket: string;
  /** An EntitlementPolicy, or the document it parses; none: every version for everyone. */
  entitlements?: unknown;
  /** Per-device admission rate of new requests. */
  rate: { perMinute: number; burst: number };
}

/**
 * The ingest plane, built the same way by the embedded platform and the ingest role from
 * its ports (queue, ledger, algorithms, results, grants, ...) and plain settings.
 */
export function buildIngest(ports: Omit<IngestDeps, 'bucket' | 'entitlements' | 'rateLimit'>, settings: IngestPlaneSettings): Ingest {
  const { entitlements } = settings;
  return new Ingest({
    ...ports,
    bucket: settings.bucket,
    entitlements: entitlements === undefined || entitlements instanceof EntitlementPolicy ? entitlements : EntitlementPolicy.parse(entitlements),
    rateLimit: new AdmissionRateLimiter(settings.rate),
  });
}
