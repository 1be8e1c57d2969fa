import { z } from 'zod';

/** Options of the embedded autoscaler (`autoscale` in the platform options); off when absent. */
export const AutoscaleOptions = z.strictObject({
  minWorkers: z.number().int().min(0).max(256).default(1),
  maxWorkers: z.number().int().min(1).max(256).default(64),
  /** Control period. */
  intervalMs: z.number().int().min(50).default(2_000),
  waitBudgetMs: z.number().min(0).default(2_000),
  /** Target P(wait > waitBudgetMs). */
  epsilon: z.number().gt(0).lt(1).default(1e-4),
  /** How long a new worker takes to take work (a local worker: ~0). */
  workerStartupMs: z.number().min(0).default(0),
  /** Priors until measurements accumulate. */
  serviceMs: z.number().positive().default(1_000),
  serviceCv: z.number().min(0).default(1),
  requestsPerRun: z.number().int().min(1).default(1),
  /** Scale in only after the wanted count stayed lower this long. */
  scaleInDelayMs: z.number().int().min(0).default(60_000),
  /** Smoothing of the measured arrival rate. */
  rateSmoothingMs: z.number().int().positive().default(10_000),
});
export type AutoscaleOptions = z.output<typeof AutoscaleOptions>;
export type AutoscaleInput = z.input<typeof AutoscaleOptions>;
