import { describe, expect, it } from 'vitest';
import { ArteriaPolicy, BacklogPolicy, type ScalingSignals } from '@arteria/scaling';

const quiet: Omit<ScalingSignals, 'nowMs'> = {
  arrivals: 0,
  completions: 0,
  serviceMsSum: 0,
  serviceMsSumSquares: 0,
  devicesInProcedure: 0,
  queued: 0,
  oldestWaitMs: 0,
  ready: 0,
  starting: 0,
  busy: 0,
};

/** Steady traffic from `devices` devices in a procedure at `perDevicePerS`, 3 s service. */
function steady(nowMs: number, devices: number, tickMs: number, perDevicePerS = 0.01): ScalingSignals {
  const arrivals = Math.round((devices * perDevicePerS * tickMs) / 1000);
  return { ...quiet, nowMs, devicesInProcedure: devices, arrivals, completions: arrivals, serviceMsSum: arrivals * 3000, serviceMsSumSquares: arrivals * 3000 * 3000 * 1.25 };
}

const options = { requestsPerActiveDevicePerS: 0.01, serviceMs: 3000, serviceCv: 0.5, workerStartupMs: 60_000, scaleInDelayMs: 120_000 };

describe('Arteria policy', () => {
  it('scales out at once when devices enter procedures, before their requests arrive', () => {
    const policy = new ArteriaPolicy(options);
    let t = 0;
    let low = 0;
    for (; t <= 600_000; t += 10_000) low = policy.decide(steady(t, 100, 10_000));
    // 1,000 devices announce a procedure; no extra request has arrived yet.
    const high = policy.decide({ ...steady(t, 100, 10_000), devicesInProcedure: 1000 });
    expect(high).toBeGreaterThan(low * 3);
  });

  it('holds its target through the scale-in window and deadband, then scales in', () => {
    const policy = new ArteriaPolicy(options);
    let t = 0;
    let high = 0;
    for (; t <= 600_000; t += 10_000) high = policy.decide(steady(t, 1000, 10_000));
    const targets: number[] = [];
    for (let i = 0; i < 60; i += 1, t += 10_000) targets.push(policy.decide(steady(t, 100, 10_000)));
    // Within the 120 s window nothing is released.
    expect(targets.slice(0, 11).every((x) => x === high)).toBe(true);
    const final = targets.at(-1) ?? high;
    expect(final).toBeLessThan(high / 3);
    // Never rises while the load only falls.
    for (let i = 1; i < targets.length; i += 1) expect(targets[i] ?? 0).toBeLessThanOrEqual(targets[i - 1] ?? 0);
  });

  it('ignores small dips (deadband) but follows every rise', () => {
    const policy = new ArteriaPolicy(options);
    const seen = new Set<number>();
    let t = 0;
    for (; t <= 600_000; t += 10_000) policy.decide(steady(t, 1000, 10_000));
    // Alternating 1000 / 990 devices: the target must not flap.
    for (let i = 0; i < 60; i += 1, t += 10_000) seen.add(policy.decide(steady(t, i % 2 === 0 ? 990 : 1000, 10_000)));
    expect(seen.size).toBe(1);
  });

  it('adds workers for a queue older than half the budget', () => {
    const policy = new ArteriaPolicy(options);
    policy.decide(steady(0, 10, 10_000));
    const base = policy.decide(steady(10_000, 10, 10_000));
    const corrected = policy.decide({ ...steady(20_000, 10, 10_000), queued: 40, oldestWaitMs: 1_500, busy: base });
    expect(corrected).toBeGreaterThanOrEqual(base + 40);
    expect(policy.explanation?.queueCorrection).toBe(base + 40);
  });

  it('works from arrivals alone when no device reports its procedure state', () => {
    const policy = new ArteriaPolicy({ ...options, requestsPerActiveDevicePerS: undefined });
    let target = 0;
    for (let t = 0; t <= 600_000; t += 10_000) target = policy.decide({ ...steady(t, 1000, 10_000), devicesInProcedure: undefined });
    // 10 requests/s x 3 s = 30 Erlangs.
    expect(target).toBeGreaterThan(30);
    expect(target).toBeLessThan(60);
  });
});

describe('backlog rule (KEDA/HPA-like)', () => {
  it('polls every 30 s and keeps the highest value of the last 300 s when scaling in', () => {
    const policy = new BacklogPolicy({ minWorkers: 1 });
    expect(policy.decide({ ...quiet, nowMs: 0, queued: 3, busy: 1 })).toBe(4);
    // Between polls nothing changes.
    expect(policy.decide({ ...quiet, nowMs: 10_000, queued: 50, busy: 4 })).toBe(4);
    // Next poll: at most double or +4 per 15 s period.
    expect(policy.decide({ ...quiet, nowMs: 30_000, queued: 50, busy: 4 })).toBe(16);
    // Backlog gone: held for the 300 s window.
    let t = 60_000;
    for (; t < 300_000; t += 30_000) expect(policy.decide({ ...quiet, nowMs: t })).toBe(16);
    for (; t < 700_000; t += 30_000) policy.decide({ ...quiet, nowMs: t });
    expect(policy.decide({ ...quiet, nowMs: t })).toBe(1);
  });
});
