/** Epoch milliseconds with sub-millisecond resolution, for stage timings. */
export const epochNow = (): number => performance.timeOrigin + performance.now();
