import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

/**
 * Shadow runs: a version that workers also run on a share of the requests of its
 * algorithm, after the delivered result is published. Its outcome is recorded beside
 * the delivered one and never reaches a device; the report compares the two.
 */
export const SHADOW_FORMAT = 'arteria-algorithm-shadow/v1';

export const ShadowPlan = z.strictObject({
  format: z.literal(SHADOW_FORMAT),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  /** The exact version run in the shadow of whatever version is delivered. */
  version: z.string().min(1).max(64),
  /** Share of the algorithm's requests also run by the shadow (a stable hash of the request id). */
  percent: z.number().min(0).max(100),
  since: z.string().datetime(),
  /** Key that signed the plan (`arteria algorithm shadow --key`); absent or null: unsigned. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/).nullable().optional(),
  /** base64 Ed25519 signature over the plan's statement (shadow-signature.ts). */
  signature: z.string().min(1).max(200).nullable().optional(),
});
export type ShadowPlan = z.infer<typeof ShadowPlan>;

const Outcome = z.strictObject({
  version: z.string(),
  /** The content digest that produced this outcome. */
  digest: z.string(),
  status: z.enum(['ok', 'failed', 'rejected']),
  errorCode: z.string().optional(),
  output: z.unknown().optional(),
  /** Lease (delivered) or start of the shadow's own read (shadow) to computed. */
  latencyMs: z.number().min(0),
});
export type ShadowOutcome = z.infer<typeof Outcome>;

export const ShadowRecord = z.strictObject({
  format: z.literal(SHADOW_FORMAT),
  requestId: z.string(),
  tenant: z.string(),
  device: z.string(),
  at: z.string().datetime(),
  delivered: Outcome,
  shadow: Outcome,
});
export type ShadowRecord = z.infer<typeof ShadowRecord>;

/** Whether request `id` is in a shadow's share: the same answer on every worker. */
export function inShadowShare(requestId: string, percent: number): boolean {
  const bucket = createHash('sha256').update(requestId).digest().readUInt32BE(0) % 10_000;
  return bucket < Math.round(percent * 100);
}

export function parseShadow<T>(schema: z.ZodType<T>, json: unknown, source: string): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('ARTIFACT_INVALID', `${source}: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'is invalid'}`);
  }
  return parsed.data;
}

interface SideStats {
  versions: string[];
  digests: string[];
  runs: number;
  errors: number;
  errorRate: number;
  latencyMs: { p50: number; p95: number; max: number };
}

export interface ShadowReport {
  name: string;
  runs: number;
  /** Share of runs where both answered ok with the same output, or both failed with the same code. */
  agreement: number;
  agreeing: number;
  /** Up to 20 request ids where they differ, with both outcomes. */
  disagreements: { requestId: string; delivered: string; shadow: string }[];
  delivered: SideStats;
  shadow: SideStats;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

function side(outcomes: readonly ShadowOutcome[]): SideStats {
  const latencies = outcomes.map((o) => o.latencyMs).sort((a, b) => a - b);
  const errors = outcomes.filter((o) => o.status !== 'ok').length;
  return {
    versions: [...new Set(outcomes.map((o) => o.version))].sort(),
    digests: [...new Set(outcomes.map((o) => o.digest))].sort(),
    runs: outcomes.length,
    errors,
    errorRate: outcomes.length === 0 ? 0 : errors / outcomes.length,
    latencyMs: { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), max: latencies.at(-1) ?? 0 },
  };
}

const agrees = (a: ShadowOutcome, b: ShadowOutcome): boolean =>
  a.status === b.status && (a.status === 'ok' ? isDeepStrictEqual(a.output, b.output) : a.errorCode === b.errorCode);

const summary = (o: ShadowOutcome): string => (o.status === 'ok' ? JSON.stringify(o.output).slice(0, 200) : `${o.status} ${o.errorCode ?? ''}`.trim());

/** The comparison of every recorded shadow run of `name`. */
export function shadowReport(name: string, records: readonly ShadowRecord[]): ShadowReport {
  const agreeing = records.filter((r) => agrees(r.delivered, r.shadow));
  const differing = records.filter((r) => !agrees(r.delivered, r.shadow));
  return {
    name,
    runs: records.length,
    agreement: records.length === 0 ? 0 : agreeing.length / records.length,
    agreeing: agreeing.length,
    disagreements: differing.slice(0, 20).map((r) => ({ requestId: r.requestId, delivered: summary(r.delivered), shadow: summary(r.shadow) })),
    delivered: side(records.map((r) => r.delivered)),
    shadow: side(records.map((r) => r.shadow)),
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

export function formatShadowReport(report: ShadowReport): string {
  const row = (label: string, s: SideStats): string =>
    `${label.padEnd(10)} ${s.versions.join(', ').padEnd(12)} runs ${String(s.runs).padStart(5)}  errors ${pct(s.errorRate).padStart(7)}  latency p50 ${s.latencyMs.p50.toFixed(0)} ms  p95 ${s.latencyMs.p95.toFixed(0)} ms\n`;
  if (report.runs === 0) return `${report.name}: no shadow runs recorded yet\n`;
  return [
    `${report.name}: ${report.runs} shadow runs, agreement ${pct(report.agreement)} (${report.agreeing}/${report.runs})\n`,
    row('delivered', report.delivered),
    row('shadow', report.shadow),
    ...report.disagreements.map((d) => `  differs ${d.requestId}: delivered ${d.delivered} | shadow ${d.shadow}\n`),
  ].join('');
}
