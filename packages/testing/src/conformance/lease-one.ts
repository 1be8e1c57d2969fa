import { expect } from 'vitest';
import type { Lease, WorkQueue } from '@arteria/ports';

/** Long enough that a test never sees a lease run out unless it waits for that on purpose. */
export const LONG_VISIBILITY_MS = 30_000;

/** Leases one task for LONG_VISIBILITY_MS, waiting up to 5 s for it; the test fails if none comes. */
export async function leaseOne(queue: WorkQueue): Promise<Lease> {
  const [lease] = await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 5_000 });
  expect(lease).toBeDefined();
  return lease!;
}
