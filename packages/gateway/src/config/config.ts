import { z } from 'zod';
import { AlgorithmSpec, ArteriaError, ID_PATTERN, SegmentEncodingSetting } from '@arteria/protocol';
import { DeidentificationProfile } from '@arteria/deid';
import { ProxyOptions } from './proxy.js';
import { MqttTlsOptions } from './tls.js';

/** S3's smallest multipart part (except the last). */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;

const id = z.string().regex(ID_PATTERN, 'must match [a-z0-9][a-z0-9_-]{0,63}');
const positiveMs = z.number().int().positive();

const S3Options = z.strictObject({
  /** S3 API endpoint, e.g. `http://127.0.0.1:4568`, `https://s3.eu-central-1.amazonaws.com`. */
  endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  region: z.string().min(1).default('us-east-1'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,62}$/, 'must be an S3 bucket name (lowercase)'),
  /**
   * Bucket-wide keys: a development mode only. Without them (the default) the gateway holds
   * no store credentials and writes each run with the platform's short-lived, per-object
   * upload grants (presigned URLs asked for over MQTT).
   */
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  /** How long the gateway waits for the platform's answer to an upload grant request. */
  grantTimeoutMs: z.number().int().positive().default(10_000),
}).refine((s) => (s.accessKeyId === undefined) === (s.secretAccessKey === undefined), { error: 'accessKeyId and secretAccessKey go together (or neither: upload grants)' });

const DeidentificationOptions = z.strictObject({
  /**
   * On by default: every run is de-identified before it is stored for upload. Turn off
   * only where runs arrive already de-identified by a system the site trusts.
   */
  enabled: z.boolean().default(true),
  /** The site secret for UID and date pseudonyms (created on first start); default `{outboxPath}.deid-key`. */
  keyPath: z.string().min(1).optional(),
  /** The on-site re-identification map (SQLite); default `{outboxPath}.reid`. */
  reidPath: z.string().min(1).optional(),
  profile: DeidentificationProfile.prefault({}),
  /**
   * Whether a fleet config pushed from the cloud may replace this profile. `refuse` (the
   * default) locks de-identification to the site's own file: a config that carries a profile
   * is rejected (reported, nothing changes), so only the hospital changes what leaves it.
   * `accept` is the site's opt-in to fleet-managed profiles.
   */
  remoteProfile: z.enum(['accept', 'refuse']).default('refuse'),
});

export const GatewayOptions = z.strictObject({
  tenant: id,
  device: id,
  /** MQTT password: `deviceToken(secret, {tenant, device})`, issued when the device is provisioned. */
  token: z.string().min(1),
  mqttUrl: z.url({ protocol: /^(mqtts?|tcp|tls|wss?)$/, error: 'must be an mqtt://, mqtts://, ws:// or wss:// URL' }),
  s3: S3Options,
  /** SQLite file of the outbox; byte sources are spooled to `{outboxPath}.spool/`. */
  outboxPath: z.string().min(1),
  /** Algorithm a run goes to when send() names none and the fleet config names none. */
  algorithm: AlgorithmSpec.default('contrast-injection@^1'),
  /** send() rejects with RESULT_TIMEOUT when no result came this long after the first publish; the run stays in the outbox. */
  resultTimeoutMs: positiveMs.default(120_000),
  /** An unanswered request is published again this often (the platform deduplicates by id). */
  resendIntervalMs: positiveMs.default(30_000),
  /** Upload retries back off exponentially from resendIntervalMs up to this. */
  maxRetryDelayMs: positiveMs.default(60_000),
  partSizeBytes: z.number().int().min(MIN_PART_SIZE_BYTES, `must be at least ${MIN_PART_SIZE_BYTES} (the S3 minimum part size)`).default(8 * 1024 * 1024),
  /** Parts of one run uploaded in parallel; memory use is about partSizeBytes * (uploadConcurrency + 1). Also the segments of a run sent while acquired on their way at once. */
  uploadConcurrency: z.number().int().min(1).max(64).default(4),
  /**
   * A multipart upload under this device's prefix that no outbox entry resumes is aborted
   * once it is this old (created just before a crash, or left by a lost outbox). Uploads of
   * runs that ended are aborted at once.
   */
  abandonedUploadAfterMs: positiveMs.default(24 * 60 * 60 * 1000),
  /** Runs not yet answered that the outbox holds; beyond this send() fails with OUTBOX_FULL. */
  maxOutboxEntries: z.number().int().min(1).default(1000),
  /** Finished entries kept for diagnostics; older ones are deleted. */
  keepFinishedEntries: z.number().int().nonnegative().default(1000),
  /**
   * A run sent again this soon after it was answered (the same file, unchanged since; or the
   * same DICOM instance, when de-identifying) gets that answer instead of running again.
   * A gateway restarted while its runs were answered meanwhile sends its sources again (the
   * watched folder, the DICOM port's instances), and the platform would otherwise run them,
   * and report them, twice. 0: every send runs.
   */
  answerAgainWithinMs: z.number().int().nonnegative().default(600_000),
  /** TLS material for mqtts:// (CA, client certificate and key files). */
  tls: MqttTlsOptions.optional(),
  mqttConnectTimeoutMs: positiveMs.default(10_000),
  /**
   * `auto`: MQTT 5 (trace context in user properties), falling back to 3.1.1 when the
   * broker's CONNACK refuses version 5; `5` or `3.1.1` pin one version.
   */
  mqttProtocol: z.enum(['auto', '5', '3.1.1']).default('auto'),
  /**
   * Reconnects back off exponentially from this to mqttReconnectMaxMs, each delay drawn
   * uniformly below its ceiling (full jitter), so a fleet does not reconnect in step.
   */
  mqttReconnectPeriodMs: positiveMs.default(1_000),
  mqttReconnectMaxMs: positiveMs.default(30_000),
  /** The site's HTTP(S) proxy for the object store and MQTT over WebSocket (default: HTTPS_PROXY / NO_PROXY). */
  proxy: ProxyOptions.optional(),
  /** Most bytes read to find the DICOM header (pixel data is never read). */
  maxHeaderBytes: z.number().int().positive().optional(),
  deidentification: DeidentificationOptions.prefault({}),
  /**
   * A complete multi-frame file handed to send() (a path) larger than this goes up in
   * segments (of about `wholeFileSegmentBytes`), as a run sent while it is acquired, so the
   * platform computes while it uploads; 0 sends every file whole. A file that cannot go in
   * segments (compressed, a single frame, burned-in annotation to mask), and a run whose
   * algorithm answers NOT_INCREMENTAL, goes whole (docs/gateway.md).
   */
  segmentWholeFilesOverBytes: z.number().int().nonnegative().default(32 * 1024 * 1024),
  /** The size a complete file's segments aim at (whole frames, at least one); up to uploadConcurrency of them are in memory at once. Fewer, larger segments cost the platform fewer steps. */
  wholeFileSegmentBytes: z.number().int().positive().default(16 * 1024 * 1024),
  /**
   * Segments compressed before they go up: `br` (Brotli, lossless, about 1.2-1.9x smaller on
   * X-ray frames at 100-200 MB/s per core) for links slower than the gateway's cores can
   * compress; `auto` (the default), Brotli while the uplink is measured (or capped) under
   * about 320 Mb/s; `none` sends the frames as they are. A segment that does not shrink goes
   * as it is, and so does every segment to a platform whose probe answer does not list the
   * encoding (docs/gateway.md).
   */
  segmentEncoding: SegmentEncodingSetting.default('auto'),
  /** Upload bandwidth cap when the fleet config sets none; absent means uncapped. */
  uploadBandwidthBytesPerSecond: z.number().int().positive().optional(),
  /** The retained online status is republished this often (with the outbox depth): the platform's "last seen". */
  heartbeatIntervalMs: positiveMs.default(60_000),
  /** A new fleet config is rolled back unless the gateway is connected within this long after applying it. */
  configConfirmTimeoutMs: positiveMs.default(10_000),
  /**
   * OpenTelemetry export of the gateway's spans (docs/operations.md, Tracing). Without
   * `otlpEndpoint` here or in OTEL_EXPORTER_OTLP_ENDPOINT, tracing is off.
   */
  tracing: z
    .strictObject({
      /** OTLP/HTTP base URL of a collector (`http://collector:4318`); overrides OTEL_EXPORTER_OTLP_ENDPOINT. */
      otlpEndpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    })
    .optional(),
});

export type GatewayOptionsInput = z.input<typeof GatewayOptions>;
export type GatewayConfig = Readonly<Omit<z.output<typeof GatewayOptions>, 's3' | 'deidentification'> & { s3: Readonly<z.output<typeof S3Options>>; deidentification: Readonly<z.output<typeof DeidentificationOptions>> }>;

/** Validates options, fills defaults and freezes the result; a bad value fails with CONFIG_INVALID naming the field. */
export function parseGatewayOptions(input: unknown): GatewayConfig {
  const parsed = GatewayOptions.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    const keys = issue?.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
    throw new ArteriaError('CONFIG_INVALID', `gateway option ${where}: ${issue?.message ?? 'invalid'}${keys}`, { cause: parsed.error });
  }
  if (parsed.data.mqttReconnectMaxMs < parsed.data.mqttReconnectPeriodMs) {
    throw new ArteriaError('CONFIG_INVALID', `gateway option mqttReconnectMaxMs: must be at least mqttReconnectPeriodMs (${parsed.data.mqttReconnectPeriodMs})`);
  }
  const { s3, deidentification, ...rest } = parsed.data;
  return Object.freeze({ ...rest, s3: Object.freeze({ ...s3 }), deidentification: Object.freeze({ ...deidentification }) });
}
