import { ArteriaError } from '@arteria/protocol';
/**
 * Erlang B / Erlang C for an M/M/c queue, and the wait-tail questions the autoscaler
 * asks of it. Loads are in Erlangs (arrival rate x mean service time).
 *
 * Erlang B is computed by the recursion B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1)),
 * which only ever divides numbers of similar size: no factorials, no overflow, stable for
 * thousands of servers. Erlang C follows from B: C = c B / (c - A (1 - B)).
 */

/** Probability that an arrival finds all `servers` busy in an M/M/c/c loss system. */
export function erlangB(servers: number, loadErlangs: number): number {
  checkServers(servers);
  if (loadErlangs <= 0) return servers === 0 ? 1 : 0;
  let b = 1;
  for (let k = 1; k <= servers; k += 1) b = (loadErlangs * b) / (k + loadErlangs * b);
  return b;
}

/** Probability that an arrival has to wait (all servers busy) in M/M/c; 1 when the queue is unstable. */
export function erlangC(servers: number, loadErlangs: number): number {
  checkServers(servers);
  if (loadErlangs <= 0) return 0;
  if (loadErlangs >= servers) return 1;
  return cFromB(servers, loadErlangs, erlangB(servers, loadErlangs));
}

export interface WaitTailInput {
  servers: number;
  loadErlangs: number;
  serviceMs: number;
  waitMs: number;
  /**
   * Stretch of the wait tail's time scale for non-exponential arrivals and service:
   * (ca^2 + cs^2) / 2 (Allen-Cunneen). 1 for M/M/c; see `variabilityFactor`.
   */
  variability?: number;
}

/** P(wait > waitMs) = C(c, A) exp(-(c - A) t / (S v)). */
export function waitTailProbability(input: WaitTailInput): number {
  const { servers, loadErlangs, serviceMs, waitMs } = input;
  const v = input.variability ?? 1;
  if (loadErlangs <= 0) return 0;
  if (loadErlangs >= servers) return 1;
  return erlangC(servers, loadErlangs) * Math.exp((-(servers - loadErlangs) * waitMs) / (serviceMs * v));
}

/** Mean wait in queue, ms (M/M/c, scaled by the variability factor). */
export function meanWaitMs(servers: number, loadErlangs: number, serviceMs: number, variability = 1): number {
  if (loadErlangs <= 0) return 0;
  if (loadErlangs >= servers) return Number.POSITIVE_INFINITY;
  return (erlangC(servers, loadErlangs) * serviceMs * variability) / (servers - loadErlangs);
}

export interface StaffingInput {
  loadErlangs: number;
  serviceMs: number;
  waitBudgetMs: number;
  /** Largest acceptable P(wait > waitBudgetMs). */
  epsilon: number;
  variability?: number;
  /** Never answer fewer than this. */
  minServers?: number;
  /**
   * Requests that arrive together (one run). The last of a batch finds the others'
   * workers taken, so the answer carries batchSize - 1 workers more than M/M/c says.
   */
  batchSize?: number;
}

/** The smallest c with P(wait > budget) <= epsilon. O(c): Erlang B is carried from c to c + 1. */
export function minServers(input: StaffingInput): number {
  const { loadErlangs: a, serviceMs, waitBudgetMs, epsilon } = input;
  const v = input.variability ?? 1;
  const floor = Math.max(0, Math.ceil(input.minServers ?? 0));
  if (!(epsilon > 0 && epsilon < 1)) throw new ArteriaError('CONFIG_INVALID', `epsilon must be in (0, 1), got ${epsilon}`);
  if (!(serviceMs > 0)) throw new ArteriaError('CONFIG_INVALID', `serviceMs must be positive, got ${serviceMs}`);
  if (!Number.isFinite(a) || a < 0) throw new ArteriaError('CONFIG_INVALID', `loadErlangs must be finite and >= 0, got ${a}`);
  const extra = Math.max(0, Math.ceil(input.batchSize ?? 1) - 1);
  if (a === 0) return floor;
  let c = Math.floor(a) + 1;
  let b = erlangB(c, a);
  for (;;) {
    const tail = cFromB(c, a, b) * Math.exp((-(c - a) * waitBudgetMs) / (serviceMs * v));
    if (tail <= epsilon && c + extra >= floor) return c + extra;
    c += 1;
    b = (a * b) / (c + a * b);
  }
}

/**
 * Wait-tail time-scale factor for the Allen-Cunneen G/G/c approximation:
 * (ca^2 + cs^2) / 2. Runs that arrive as batches of K requests (Poisson runs) have
 * ca^2 = E[K^2] / E[K] (the index of dispersion of counts), which is K for fixed K.
 * Deterministic service has cs^2 = 0, exponential cs^2 = 1.
 */
export function variabilityFactor(input: { serviceCv: number; requestsPerRun?: number; requestsPerRunCv?: number }): number {
  const k = Math.max(1, input.requestsPerRun ?? 1);
  const kCv = input.requestsPerRunCv ?? 0;
  const ca2 = k * (1 + kCv * kCv);
  const cs2 = input.serviceCv * input.serviceCv;
  return (ca2 + cs2) / 2;
}

/** Square-root staffing: c = ceil(A + beta sqrt(A)). */
export function sqrtStaffing(loadErlangs: number, beta: number): number {
  if (loadErlangs <= 0) return 0;
  return Math.ceil(loadErlangs + beta * Math.sqrt(loadErlangs));
}

/**
 * Halfin-Whitt: with c = A + beta sqrt(A) and large A, P(wait) tends to
 * 1 / (1 + beta Phi(beta) / phi(beta)).
 */
export function halfinWhittDelayProbability(beta: number): number {
  if (beta <= 0) return 1;
  const phi = Math.exp((-beta * beta) / 2) / Math.sqrt(2 * Math.PI);
  return 1 / (1 + (beta * normalCdf(beta)) / phi);
}

/** The beta that square-root staffing needs so P(wait > budget) <= epsilon at this load. */
export function staffingBeta(input: StaffingInput): number {
  const a = input.loadErlangs;
  if (a <= 0) return 0;
  return (minServers(input) - a) / Math.sqrt(a);
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 via erf; |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return x >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

function cFromB(c: number, a: number, b: number): number {
  return (c * b) / (c - a * (1 - b));
}

function checkServers(servers: number): void {
  if (!Number.isInteger(servers) || servers < 0) throw new ArteriaError('CONFIG_INVALID', `servers must be a whole number >= 0, got ${servers}`);
}
