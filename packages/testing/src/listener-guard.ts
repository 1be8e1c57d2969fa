/** Process events whose listeners change how the rest of a process stops or fails. */
export const GUARDED_PROCESS_EVENTS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'uncaughtException', 'unhandledRejection'] as const;

/**
 * Counts the process's signal and error listeners now; the returned check throws, naming
 * each event, when more are registered than then. Test files share a worker process
 * (vitest.config.ts, `isolate: false`): a listener one file leaves behind would decide how
 * later files in that worker stop or fail.
 */
export function watchProcessListeners(): () => void {
  const before = new Map(GUARDED_PROCESS_EVENTS.map((event) => [event, process.listenerCount(event)]));
  return () => {
    const grown = GUARDED_PROCESS_EVENTS.filter((event) => process.listenerCount(event) > before.get(event)!);
    if (grown.length === 0) return;
    const counts = grown.map((event) => `${event} ${before.get(event)} -> ${process.listenerCount(event)}`).join(', ');
    throw new Error(`process listeners left behind (${counts}): remove them when the tests that added them end`);
  };
}
