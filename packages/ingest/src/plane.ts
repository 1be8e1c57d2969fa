import { EntitlementPolicy } from './entitlements.js';
import { Ingest, type IngestDeps } from './ingest.js';
import { OpenRunLimit } from './open-runs.js';
import { AdmissionRateLimiter } from './rate-limit.js';
import type { DeviceRevocations } from '@arteria/ports';

export interface IngestPlaneSettings {
  bucket: string;
  /** An EntitlementPolicy, or the document it parses; none: every version for everyone. */
  entitlements?: unknown;
  /** Per-device admission rate of new requests. */
  rate: { perMinute: number; burst: number };
  /**
   * Per-device budget of answers to what is not admitted (refused or unreadable messages,
   * probes); none: the admission rate.
   */
  replyRate?: { perMinute: number; burst: number };
  /** Per-device rate of upload grant requests; none: unlimited. */
  grantRate?: { perMinute: number; burst: number };
  /** Segmented runs one device may hold open at once (TOO_MANY_OPEN_RUNS beyond); 0: no cap. */
  maxOpenSegmentedRunsPerDevice: number;
  /** Tenants that allow inputs without a de-identification declaration (default: none). */
  allowIdentifiedInputs?: readonly string[];
  /** Revoked devices, refused DEVICE_REVOKED; none: no device is revoked. */
  revocations?: DeviceRevocations;
}

/**
 * The ingest plane, built the same way by the embedded platform and the ingest role from
 * its ports (queue, ledger, algorithms, results, grants, ...) and plain settings.
 */
export function buildIngest(ports: Omit<IngestDeps, 'bucket' | 'entitlements' | 'openRuns' | 'rateLimit' | 'grantRateLimit' | 'replyLimit' | 'revocations' | 'identifiedInputTenants'>, settings: IngestPlaneSettings): Ingest {
  const { entitlements } = settings;
  return new Ingest({
    ...ports,
    bucket: settings.bucket,
    entitlements: entitlements === undefined || entitlements instanceof EntitlementPolicy ? entitlements : EntitlementPolicy.parse(entitlements),
    rateLimit: new AdmissionRateLimiter(settings.rate),
    openRuns: new OpenRunLimit(settings.maxOpenSegmentedRunsPerDevice, ports.ledger),
    ...(settings.grantRate === undefined ? {} : { grantRateLimit: new AdmissionRateLimiter(settings.grantRate, Date.now, 'upload grant requests') }),
    // A bucket of its own (at the admission rate unless set): answers to refused messages and probes.
    replyLimit: new AdmissionRateLimiter(settings.replyRate ?? settings.rate, Date.now, 'messages that were refused or probes'),
    ...(settings.revocations === undefined ? {} : { revocations: settings.revocations }),
    identifiedInputTenants: new Set(settings.allowIdentifiedInputs ?? []),
  });
}
