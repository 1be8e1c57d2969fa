import { z } from 'zod';
import { AlgorithmSpec, ArteriaError, ID_PATTERN } from '@arteria/protocol';

export const FleetOptions = z.strictObject({
  devices: z.number().int().min(0).max(10_000).default(8),
  tenant: z.string().regex(ID_PATTERN).default('demo'),
  /** The tenant's provisioning secret: the fleet derives each device's token from it. */
  tenantSecret: z.string().min(16),
  mqttUrl: z.string().min(1),
  s3: z.strictObject({
    endpoint: z.string().min(1),
    region: z.string().default('us-east-1'),
    bucket: z.string().min(3),
    /** Bucket-wide keys (development); absent: the simulated gateways use upload grants, as real ones do. */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
  }),
  /** Each device keeps its outbox here (`{dataDir}/{device}.db`). */
  dataDir: z.string().min(1),
  /** Each run goes to one of these, at random; balloon-inflation gets angioplasty runs, others plain XA runs. */
  algorithms: z.array(AlgorithmSpec).min(1).default(['contrast-injection@^1', 'balloon-inflation@^3']),
  run: z
    .strictObject({
      rows: z.number().int().min(16).max(4096).default(128),
      columns: z.number().int().min(16).max(4096).default(128),
      frames: z.number().int().min(2).max(2000).default(30),
      frameRateHz: z.number().min(1).max(60).default(15),
      bitsStored: z.union([z.literal(8), z.literal(10), z.literal(12), z.literal(14), z.literal(16)]).default(8),
      /** Share of runs holding the event their algorithm looks for (contrast injection, balloon inflation). */
      eventShare: z.number().min(0).max(1).default(0.7),
    })
    .prefault({}),
  profile: z
    .strictObject({
      meanIdleMs: z.number().positive().default(20_000),
      meanProcedureMs: z.number().positive().default(60_000),
      meanRunIntervalMs: z.number().positive().default(4_000),
    })
    .prefault({}),
  /** An unanswered request is published again this often. */
  resendIntervalMs: z.number().int().positive().default(5_000),
  seed: z.number().int().default(1),
});
export type FleetOptions = z.output<typeof FleetOptions>;
export type FleetOptionsInput = z.input<typeof FleetOptions>;

export function parseFleetOptions(input: unknown): Readonly<FleetOptions> {
  const parsed = FleetOptions.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('CONFIG_INVALID', `fleet option ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return Object.freeze(parsed.data);
}
