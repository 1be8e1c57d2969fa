/** Lifecycle shared by the cluster roles: readiness follows `running`, liveness the process. */
export type RoleState = 'starting' | 'running' | 'draining' | 'stopped';

/** Runs every cleanup (last started first) even if one throws; rethrows all failures at the end. */
export async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, 'did not stop cleanly');
}

/** Resolves true when `work` settles within `timeoutMs`, false when the time ran out first. */
export async function within(work: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
