import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import semver from 'semver';
import { z } from 'zod';
import { ArteriaError, ID_PATTERN } from '@arteria/protocol';

/** `name@range` (semver), or `name` for every version. */
const EntitledSpec = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}(@[0-9A-Za-z.^~<>=*| -]{1,60})?$/, 'must be name or name@semver-range, e.g. contrast-injection@1.0.x')
  .refine((spec) => spec.indexOf('@') < 0 || semver.validRange(spec.slice(spec.indexOf('@') + 1)) !== null, 'has a range that is not valid semver');

/**
 * Bounds past which the canary is withdrawn: compared with the tenant's results of the
 * versions below it over the recent ledger window, once each side has `minSamples`.
 */
export const CanaryRollback = z.strictObject({
  minSamples: z.number().int().min(1).max(100_000).default(20),
  /** Canary error rate minus the others' (0.05: five points more failures). */
  maxErrorRateIncrease: z.number().min(0).max(1).default(0.05),
  /** Canary p95 latency (lease to computed) over the others'. */
  maxLatencyRatio: z.number().min(1).max(1_000).default(1.5),
});
export type CanaryRollback = z.output<typeof CanaryRollback>;

const TenantEntitlements = z.strictObject({
  /** What every device of the tenant may run. */
  algorithms: z.array(EntitledSpec).max(256),
  /** Devices with their own list, which replaces the tenant's. */
  devices: z.record(z.string().regex(ID_PATTERN), z.array(EntitledSpec).max(256)).default({}),
  /** Run only algorithm versions signed by a key the platform trusts (ARTIFACT_UNSIGNED otherwise). */
  requireSignedAlgorithms: z.boolean().default(false),
  /**
   * Per algorithm name: a new version run by a share of the tenant's devices (chosen by a
   * hash of the device id, so each device stays in or out as the share grows); the
   * other devices keep the versions below it.
   */
  canaries: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
      z.strictObject({
        version: z.string().refine((v) => semver.valid(v) !== null, 'must be an exact semver version'),
        percent: z.number().min(0).max(100),
        /** Withdraw the canary automatically when it does worse than the versions below it (ingest's canary guard). */
        rollback: CanaryRollback.optional(),
      }),
    )
    .default({}),
});

/**
 * Which algorithm versions each tenant (and, where set, each device) may run: the versions
 * a site has validated and licensed. A tenant that is not listed may run nothing. Without
 * entitlements at all, every registered algorithm is enabled for everyone.
 */
export const Entitlements = z.record(z.string().regex(ID_PATTERN), TenantEntitlements);
export type EntitlementsInput = z.input<typeof Entitlements>;

/** The ranges of one algorithm a device may run; undefined: any version. */
export type EntitledRanges = readonly string[] | undefined;

/** An entitlements JSON file, read and checked; CONFIG_INVALID names what is wrong with it. */
export async function readEntitlementsFile(file: string): Promise<z.output<typeof Entitlements>> {
  const source = `entitlements file ${file}`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${source} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${source} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseEntitlements(json, source);
}

function parseEntitlements(input: unknown, source: string): z.output<typeof Entitlements> {
  const parsed = Entitlements.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('CONFIG_INVALID', `${source}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** One tenant's canary of one algorithm, as configured. */
export interface CanaryEntry {
  tenant: string;
  algorithm: string;
  version: string;
  percent: number;
  rollback: CanaryRollback | undefined;
}

export class EntitlementPolicy {
  /** `tenant/name@version` of canaries withdrawn since the file was read (the canary guard). */
  readonly #withdrawn = new Set<string>();

  private constructor(private readonly entitlements: z.output<typeof Entitlements> | undefined) {}

  /** Every configured canary, withdrawn ones included. */
  canaries(): CanaryEntry[] {
    return Object.entries(this.entitlements ?? {}).flatMap(([tenant, own]) =>
      Object.entries(own.canaries).map(([algorithm, c]) => ({ tenant, algorithm, version: c.version, percent: c.percent, rollback: c.rollback })),
    );
  }

  /** From now on no device of `tenant` gets that canary version: all keep the versions below it. */
  withdraw(tenant: string, algorithm: string, version: string): void {
    this.#withdrawn.add(`${tenant}/${algorithm}@${version}`);
  }

  isWithdrawn(tenant: string, algorithm: string, version: string): boolean {
    return this.#withdrawn.has(`${tenant}/${algorithm}@${version}`);
  }

  /** Every algorithm for every device. */
  static open(): EntitlementPolicy {
    return new EntitlementPolicy(undefined);
  }

  static parse(input: unknown, source = 'entitlements'): EntitlementPolicy {
    return new EntitlementPolicy(parseEntitlements(input, source));
  }

  /** From a JSON file; an empty path means no entitlements (everything enabled). */
  static async load(file: string): Promise<EntitlementPolicy> {
    return file === '' ? EntitlementPolicy.open() : new EntitlementPolicy(await readEntitlementsFile(file));
  }

  /** Whether the tenant runs only signed algorithm versions. */
  requiresSignedAlgorithms(tenant: string): boolean {
    return this.entitlements?.[tenant]?.requireSignedAlgorithms ?? false;
  }

  /** Whether the device is in the tenant's canary share for `algorithm` (a stable hash of tenant and device). */
  static inCanary(tenant: string, device: string, percent: number): boolean {
    const bucket = createHash('sha256').update(`${tenant}/${device}`).digest().readUInt32BE(0) % 10_000;
    return bucket < Math.round(percent * 100);
  }

  /** The version ranges of `algorithm` this device may run: undefined for any, [] for none. */
  rangesFor(tenant: string, device: string, algorithm: string): EntitledRanges {
    if (this.entitlements === undefined) return undefined;
    const own = this.entitlements[tenant];
    if (own === undefined) return [];
    const specs = own.devices[device] ?? own.algorithms;
    const ranges = specs.flatMap((spec) => {
      const at = spec.indexOf('@');
      const name = at < 0 ? spec : spec.slice(0, at);
      return name === algorithm ? [at < 0 ? '*' : spec.slice(at + 1)] : [];
    });
    const canary = own.canaries[algorithm];
    const share = canary !== undefined && this.isWithdrawn(tenant, algorithm, canary.version) ? 0 : canary?.percent;
    if (canary === undefined || share === undefined || ranges.length === 0 || EntitlementPolicy.inCanary(tenant, device, share)) return ranges;
    // Outside the canary share: every entitled range, below the canary version.
    return ranges.map((range) =>
      range
        .split('||')
        .map((part) => `${part.trim() === '*' ? '' : `${part.trim()} `}<${canary.version}`)
        .join(' || '),
    );
  }
}
