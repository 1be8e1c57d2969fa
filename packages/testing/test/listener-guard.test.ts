import { describe, expect, it } from 'vitest';
import { watchProcessListeners } from '@arteria/testing';

describe('process listener guard', () => {
  it('names each signal or error event that gained a listener, and passes once it is removed', () => {
    const check = watchProcessListeners();
    const onTerm = (): void => undefined;
    const onRejection = (): void => undefined;
    process.on('SIGTERM', onTerm);
    process.on('unhandledRejection', onRejection);
    try {
      expect(check).toThrow(/SIGTERM \d+ -> \d+, unhandledRejection \d+ -> \d+/);
    } finally {
      process.off('SIGTERM', onTerm);
      process.off('unhandledRejection', onRejection);
    }
    expect(check).not.toThrow();
  });

  it('leaves exit listeners alone: libraries register one per process (pino\'s on-exit-leak-free)', () => {
    const check = watchProcessListeners();
    const onExit = (): void => undefined;
    process.on('exit', onExit);
    try {
      expect(check).not.toThrow();
    } finally {
      process.off('exit', onExit);
    }
  });
});
