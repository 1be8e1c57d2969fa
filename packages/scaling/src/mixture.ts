import { ArteriaError } from '@arteria/protocol';
import { minServers, waitTailProbability } from './erlang.js';

/**
 * Devices switch between procedure and idle over hours, while the queue forgets its past
 * in seconds. So the load the queue sees is set by how many devices are in a procedure
 * right now, K ~ Binomial(N, p), and the wait tail is the mixture over K of the Erlang C
 * tail at load K a1, not the Erlang C tail at the day's average load.
 */
export interface MixtureInput {
  devices: number;
  /** Probability that a device is in a procedure at the moment considered. */
  procedureShare: number;
  /** Offered load of one device while in a procedure, Erlangs. */
  erlangsPerActiveDevice: number;
  serviceMs: number;
  waitBudgetMs: number;
  variability?: number;
  /** Requests arriving together; adds batchSize - 1 workers (see `minServers`). */
  batchSize?: number;
}

export interface Pmf {
  /** Value of the first entry. */
  first: number;
  probabilities: Float64Array;
}

/** Binomial(n, p) probabilities over the range holding all but ~1e-15 of the mass. */
export function binomialPmf(n: number, p: number): Pmf {
  if (!Number.isInteger(n) || n < 0) throw new ArteriaError('CONFIG_INVALID', `n must be a whole number >= 0, got ${n}`);
  if (p <= 0 || n === 0) return { first: 0, probabilities: Float64Array.of(1) };
  if (p >= 1) return { first: n, probabilities: Float64Array.of(1) };
  const mode = Math.floor((n + 1) * p);
  const logAtMode = logChoose(n, mode) + mode * Math.log(p) + (n - mode) * Math.log1p(-p);
  const ratioUp = (k: number): number => ((n - k) / (k + 1)) * (p / (1 - p)); // P(k+1)/P(k)
  const up: number[] = [];
  let v = Math.exp(logAtMode);
  for (let k = mode; k < n && v > 1e-14; k += 1) {
    v *= ratioUp(k);
    up.push(v);
  }
  const down: number[] = [];
  v = Math.exp(logAtMode);
  for (let k = mode; k > 0 && v > 1e-14; k -= 1) {
    v /= ratioUp(k - 1);
    down.push(v);
  }
  const probabilities = new Float64Array(down.length + 1 + up.length);
  down.reverse().forEach((x, i) => (probabilities[i] = x));
  probabilities[down.length] = Math.exp(logAtMode);
  up.forEach((x, i) => (probabilities[down.length + 1 + i] = x));
  let total = 0;
  for (const x of probabilities) total += x;
  for (let i = 0; i < probabilities.length; i += 1) probabilities[i] = (probabilities[i] ?? 0) / total;
  return { first: mode - down.length, probabilities };
}

/** P(wait > budget) with `servers` workers, averaged over the number of devices in a procedure. */
export function mixtureWaitTail(servers: number, input: MixtureInput, pmf = binomialPmf(input.devices, input.procedureShare)): number {
  let tail = 0;
  pmf.probabilities.forEach((weight, i) => {
    const load = (pmf.first + i) * input.erlangsPerActiveDevice;
    tail += weight * waitTailProbability({ servers, loadErlangs: load, serviceMs: input.serviceMs, waitMs: input.waitBudgetMs, variability: input.variability ?? 1 });
  });
  return tail;
}

/** The smallest c whose mixture tail is <= epsilon (the tail falls as c grows: binary search). */
export function minServersMixture(input: MixtureInput & { epsilon: number; minServers?: number }): number {
  const pmf = binomialPmf(input.devices, input.procedureShare);
  const top = pmf.first + pmf.probabilities.length - 1;
  let hi = minServers({
    loadErlangs: top * input.erlangsPerActiveDevice,
    serviceMs: input.serviceMs,
    waitBudgetMs: input.waitBudgetMs,
    epsilon: input.epsilon,
    variability: input.variability ?? 1,
    minServers: Math.max(1, input.minServers ?? 0),
  });
  let lo = Math.max(0, Math.ceil(input.minServers ?? 0)) - 1;
  // Invariant: tail(hi) <= epsilon, tail(lo) > epsilon (or lo below every candidate).
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (mid > 0 && mixtureWaitTail(mid, input, pmf) <= input.epsilon) hi = mid;
    else lo = mid;
  }
  return hi + Math.max(0, Math.ceil(input.batchSize ?? 1) - 1);
}

/** ln C(n, k) via ln Gamma. */
function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** Lanczos approximation (g = 7, n = 9), accurate to ~1e-13 for x > 0. */
function logGamma(x: number): number {
  const g = 7;
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let s = c[0] ?? 1;
  for (let i = 1; i < g + 2; i += 1) s += (c[i] ?? 0) / (z + i);
  const t = z + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}
