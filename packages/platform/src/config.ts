import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ArteriaError, ID_PATTERN } from '@arteria/protocol';
import { AutoscaleOptions } from '@arteria/autoscaler';
import { Entitlements, AdmissionRate, GrantRate } from '@arteria/ingest';
import { ArtifactTrustOptions } from '@arteria/worker';
import { HistoryOptions } from '@arteria/telemetry';

const port = z.number().int().min(0).max(65535);

/**
 * Options of the embedded all-in-one platform. Defaults keep clear of the ports a
 * machine commonly runs other brokers and stores on (1883, 4222, 9000).
 */
/** Where spans go: an OTLP/HTTP collector (`http://collector:4318`; spans to `/v1/traces`). */
export const TracingOptions = z.strictObject({
  otlpEndpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
});

export const EmbeddedPlatformOptions = z.strictObject({
  host: z.string().default('127.0.0.1'),
  mqttPort: port.default(18830),
  s3Port: port.default(18831),
  httpPort: port.default(18832),
  dataDir: z.string().default('.arteria'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,62}$/).default('arteria-runs'),
  workers: z.number().int().min(0).max(256).default(4),
  maxDeliveries: z.number().int().min(1).max(100).default(5),
  visibilityMs: z.number().int().min(100).default(30_000),
  leaseWaitMs: z.number().int().min(0).default(1_000),
  maxInputBytes: z.number().int().positive().default(2 * 1024 ** 3),
  /** A run sent while it is acquired that folds no new segment for this long ends RUN_EXPIRED, and is released. */
  segmentedRunIdleMs: z.number().int().min(1000).default(30 * 60_000),
  /** How long a device's upload grant (its presigned URLs) stays valid. */
  grantTtlMs: z.number().int().min(1000).max(60 * 60 * 1000).default(5 * 60 * 1000),
  /** FULL: no committed task is lost even on power loss. NORMAL: faster, safe against process crashes only. */
  queueSynchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
  algorithmDirs: z.array(z.string()).min(1),
  /** Whose algorithm signatures count, and whether unsigned versions are refused at load. */
  algorithmTrust: ArtifactTrustOptions.optional(),
  /** Warm isolated threads per algorithm version. */
  threadsPerAlgorithm: z.number().int().min(1).max(64).default(2),
  /** Resize the worker pool from the queueing model; off when absent (the pool keeps `workers`). */
  autoscale: AutoscaleOptions.optional(),
  /** Which algorithm versions each tenant and device may run; absent: every registered one. */
  entitlements: Entitlements.optional(),
  /** How often canaries with rollback bounds are judged against the recent results (as cluster ingest's ingest.canaryCheckIntervalMs). */
  canaryCheckIntervalMs: z.number().int().min(50).default(10_000),
  /** Newest ledger results each judgement reads. */
  canaryWindow: z.number().int().min(10).max(100_000).default(2_000),
  /** New requests per device: sustained per minute and burst (RATE_LIMITED beyond); perMinute 0: off. */
  admissionRate: AdmissionRate.prefault({}),
  /** Upload grant requests per device: sustained per minute and burst (answered RATE_LIMITED beyond); perMinute 0: off. */
  grantRate: GrantRate.prefault({}),
  /** Answers per device to messages not admitted (refusals that are not recorded, probe answers): per minute and burst; beyond, one RATE_LIMITED, then none until it refills; perMinute 0: off. */
  replyRate: AdmissionRate.prefault({}),
  /** Segmented runs one device may hold open at once (a run-open beyond is refused TOO_MANY_OPEN_RUNS); a run frees its slot when it ends, is abandoned or expires; 0: no cap. */
  maxOpenSegmentedRunsPerDevice: z.number().int().min(0).default(8),
  /** Tenants whose inputs may run without declaring de-identification (default none: DEIDENTIFICATION_MISSING). */
  allowIdentifiedInputs: z.array(z.string().regex(ID_PATTERN)).default([]),
  /** Accept device tokens without an expiry (made by releases before tokens expired); default false (docs/identity.md). */
  acceptLegacyTokens: z.boolean().default(false),
  /**
   * A second MQTT listener with TLS (on `host`): the server certificate, the CA device
   * certificates chain to and its CRL; `requireCertificate`: devices must show one.
   */
  mqttTls: z
    .strictObject({
      port: port.default(18833),
      caFile: z.string().min(1),
      certFile: z.string().min(1),
      keyFile: z.string().min(1),
      crlFile: z.string().min(1).optional(),
      requireCertificate: z.boolean().default(false),
    })
    .optional(),
  /** Tenant id -> provisioning secret from which device tokens derive. */
  tenants: z.record(z.string().regex(ID_PATTERN), z.string().min(16)),
  platformSecret: z.string().min(16).default(() => randomBytes(24).toString('base64url')),
  /** Operator token for the dashboard, /api/* and /metrics; /healthz and /readyz stay open. */
  opsToken: z.string().min(16).default(() => randomBytes(24).toString('base64url')),
  /** The dashboard's history ring (default 10 s x 360: the last hour). */
  history: HistoryOptions.prefault({}),
  /** PEM certificate and key: the ops HTTP port serves HTTPS. */
  httpTls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /** OpenTelemetry export of ingest, queue and worker spans; off without `otlpEndpoint` (docs/operations.md, Tracing). */
  tracing: TracingOptions.optional(),
});
export type EmbeddedPlatformOptions = z.output<typeof EmbeddedPlatformOptions>;
export type EmbeddedPlatformInput = z.input<typeof EmbeddedPlatformOptions>;

export function parseEmbeddedOptions(input: unknown): Readonly<EmbeddedPlatformOptions> {
  const parsed = EmbeddedPlatformOptions.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('CONFIG_INVALID', `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return Object.freeze(parsed.data);
}
