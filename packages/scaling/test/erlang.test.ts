import { describe, expect, it } from 'vitest';
import {
  binomialPmf,
  erlangB,
  erlangC,
  halfinWhittDelayProbability,
  meanWaitMs,
  minServers,
  minServersMixture,
  mixtureWaitTail,
  sqrtStaffing,
  variabilityFactor,
  waitTailProbability,
} from '@arteria/scaling';

/** Erlang C by the textbook sum formula, for small c only (factorials overflow beyond ~170). */
function erlangCBySum(c: number, a: number): number {
  let term = 1;
  let sum = 1;
  for (let k = 1; k < c; k += 1) {
    term *= a / k;
    sum += term;
  }
  const top = ((term * a) / c) * (c / (c - a));
  return top / (sum + top);
}

describe('Erlang B and C', () => {
  it('reproduces published Erlang C values for A = 10 Erlangs, c = 11..15', () => {
    // Standard Erlang C table values (e.g. Kleinrock, Queueing Systems Vol. 1, M/M/m
    // delay probability; the same figures appear in call-centre staffing tables):
    // A = 10: c = 11 -> 0.6821, 12 -> 0.4494, 13 -> 0.2853, 14 -> 0.1741, 15 -> 0.1020.
    const published = [0.6821, 0.4494, 0.2853, 0.1741, 0.102];
    published.forEach((value, i) => expect(erlangC(11 + i, 10)).toBeCloseTo(value, 4));
  });

  it('reproduces published Erlang B values', () => {
    // Erlang B tables: B(c = 10, A = 10) = 0.2146; B(c = 5, A = 2) = 0.0367; B(c = 1, A = 1) = 0.5.
    expect(erlangB(10, 10)).toBeCloseTo(0.2146, 4);
    expect(erlangB(5, 2)).toBeCloseTo(0.0367, 4);
    expect(erlangB(1, 1)).toBe(0.5);
  });

  it('agrees with the sum formula where that one is computable', () => {
    for (const [c, a] of [[3, 2], [20, 15.5], [50, 45], [120, 100]] as const) {
      expect(erlangC(c, a)).toBeCloseTo(erlangCBySum(c, a), 10);
    }
  });

  it('stays finite and in [0, 1] for thousands of servers, where factorials overflow', () => {
    const c = erlangC(10_500, 10_000);
    expect(Number.isFinite(c)).toBe(true);
    expect(c).toBeGreaterThan(0);
    expect(c).toBeLessThan(1e-3);
    expect(erlangC(10, 10)).toBe(1);
    expect(erlangC(5, 0)).toBe(0);
  });

  it('matches the M/M/c mean wait textbook example (c = 2, A = 1.5, S = 1: Wq = 1.2857)', () => {
    // M/M/2 with lambda = 1.5, mu = 1: Lq = 1.9286, Wq = Lq / lambda = 1.2857.
    expect(meanWaitMs(2, 1.5, 1)).toBeCloseTo(1.2857, 4);
  });
});

describe('staffing', () => {
  it('finds the smallest c meeting P(wait > t) <= epsilon', () => {
    const input = { loadErlangs: 10, serviceMs: 1000, waitBudgetMs: 0, epsilon: 0.2 };
    // With t = 0 the tail is Erlang C itself: 14 -> 0.1741 (> 0.2? no), 13 -> 0.2853.
    expect(minServers(input)).toBe(14);
    const c = minServers({ loadErlangs: 200, serviceMs: 3000, waitBudgetMs: 2000, epsilon: 1e-4 });
    const tail = (n: number): number => waitTailProbability({ servers: n, loadErlangs: 200, serviceMs: 3000, waitMs: 2000 });
    expect(tail(c)).toBeLessThanOrEqual(1e-4);
    expect(tail(c - 1)).toBeGreaterThan(1e-4);
  });

  it('needs headroom that grows far slower than the load', () => {
    const at = (a: number): number => minServers({ loadErlangs: a, serviceMs: 3000, waitBudgetMs: 2000, epsilon: 1e-4 });
    const headroom100 = at(100) - 100;
    const headroom10000 = at(10_000) - 10_000;
    // 100x the load: at most sqrt(100) = 10x the headroom. With a wait budget the headroom
    // even saturates near (S / t) ln(1 / epsilon) = 13.8 workers, as C(c, A) tends to 1.
    expect(headroom10000).toBeGreaterThan(headroom100);
    expect(headroom10000 / headroom100).toBeLessThan(10);
    expect(headroom10000 / 10_000).toBeLessThan(0.01);
    expect(sqrtStaffing(100, 2)).toBe(120);
  });

  it('needs fewer workers for deterministic service and more for batches', () => {
    const base = { loadErlangs: 50, serviceMs: 3000, waitBudgetMs: 2000, epsilon: 1e-4 };
    const exponential = minServers(base);
    const deterministic = minServers({ ...base, variability: variabilityFactor({ serviceCv: 0 }) });
    const batches = minServers({ ...base, variability: variabilityFactor({ serviceCv: 1, requestsPerRun: 4 }), batchSize: 4 });
    expect(deterministic).toBeLessThan(exponential);
    expect(batches).toBeGreaterThan(exponential);
    expect(variabilityFactor({ serviceCv: 1 })).toBe(1);
    expect(variabilityFactor({ serviceCv: 0 })).toBe(0.5);
  });

  it('Halfin-Whitt delay probability falls with beta', () => {
    expect(halfinWhittDelayProbability(0)).toBe(1);
    // 1 / (1 + Phi(1) / phi(1)) = 1 / (1 + 0.84134 / 0.24197) = 0.2234
    expect(halfinWhittDelayProbability(1)).toBeCloseTo(0.2234, 3);
    // Large load: Erlang C at c = A + sqrt(A) approaches the limit.
    expect(erlangC(10_100, 10_000)).toBeCloseTo(halfinWhittDelayProbability(1), 2);
  });
});

describe('mixture over devices in a procedure', () => {
  it('binomial pmf sums to 1 and centres on n p', () => {
    const pmf = binomialPmf(10_000, 0.3);
    let total = 0;
    let mean = 0;
    pmf.probabilities.forEach((p, i) => {
      total += p;
      mean += p * (pmf.first + i);
    });
    expect(total).toBeCloseTo(1, 10);
    expect(mean).toBeCloseTo(3000, 3);
  });

  it('asks for more workers than the mean load alone, and fewer than the worst case', () => {
    const input = { devices: 200, procedureShare: 0.3, erlangsPerActiveDevice: 0.2, serviceMs: 3000, waitBudgetMs: 2000, epsilon: 1e-4 };
    const mixture = minServersMixture(input);
    const atMean = minServers({ loadErlangs: 200 * 0.3 * 0.2, serviceMs: 3000, waitBudgetMs: 2000, epsilon: 1e-4 });
    const atAll = minServers({ loadErlangs: 200 * 0.2, serviceMs: 3000, waitBudgetMs: 2000, epsilon: 1e-4 });
    expect(mixture).toBeGreaterThan(atMean);
    expect(mixture).toBeLessThan(atAll);
    expect(mixtureWaitTail(mixture, input)).toBeLessThanOrEqual(1e-4);
    expect(mixtureWaitTail(mixture - 1, input)).toBeGreaterThan(1e-4);
  });
});
