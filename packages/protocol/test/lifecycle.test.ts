import { describe, expect, it } from 'vitest';
import { ArteriaError, Lifecycle, type LifecycleState } from '@arteria/protocol';

describe('Lifecycle', () => {
  it('starts once, closes what it opened last-first, and reports every failed step', async () => {
    const life = new Lifecycle('test part');
    const states: LifecycleState[] = [];
    life.onChange((s) => states.push(s));
    const closed: string[] = [];
    await life.start(() => {
      life.defer('store', () => void closed.push('store'));
      life.defer('broker', () => {
        closed.push('broker');
        throw new Error('broker refused to stop');
      });
      life.defer('http', () => void closed.push('http'));
    });
    expect(life.state).toBe('running');
    const error = await life.close().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ArteriaError);
    expect((error as ArteriaError).code).toBe('CLOSE_FAILED');
    expect((error as ArteriaError).message).toContain('broker: broker refused to stop');
    expect(closed).toEqual(['http', 'broker', 'store']);
    expect(states).toEqual(['starting', 'running', 'closing', 'closed']);
    // Memoised: a second close shares the outcome and runs nothing again.
    await expect(life.close()).rejects.toBe(error);
    expect(closed).toHaveLength(3);
  });

  it('a start that throws closes what it had opened and rethrows', async () => {
    const life = new Lifecycle('failing part');
    const closed: string[] = [];
    await expect(life.start(() => {
      life.defer('queue', () => void closed.push('queue'));
      throw new ArteriaError('STORAGE_UNAVAILABLE', 'store down');
    })).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(closed).toEqual(['queue']);
    expect(life.state).toBe('closed');
  });

  it('misuse is a typed ILLEGAL_STATE error naming the part, its state and the operation', async () => {
    const life = new Lifecycle('worker pool');
    expect(() => life.assertRunning('lease')).toThrow(expect.objectContaining({ code: 'ILLEGAL_STATE', message: 'worker pool is new: cannot lease' }) as Error);
    await life.start(() => undefined);
    await expect(life.start(() => undefined)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    await life.close();
    expect(() => life.defer('late', () => undefined)).toThrow(expect.objectContaining({ code: 'ILLEGAL_STATE' }) as Error);
    expect(() => life.assertRunning('lease')).toThrow(/worker pool is closed: cannot lease/);
  });

  it('drain is separate from close and memoised; close after drain still runs every cleanup', async () => {
    const life = new Lifecycle('role');
    let drained = 0;
    let cleaned = 0;
    await life.start(() => life.defer('conn', () => void (cleaned += 1)));
    const a = life.drain(async () => {
      drained += 1;
      await new Promise((r) => setTimeout(r, 10));
    });
    const b = life.drain(() => void (drained += 1));
    expect(life.state).toBe('draining');
    expect(() => life.assertRunning('take work')).toThrow(/draining/);
    expect(() => life.assertRunning('finish work', true)).not.toThrow();
    await Promise.all([a, b]);
    expect(drained).toBe(1);
    await life.close();
    expect(cleaned).toBe(1);
  });

  it('closes at the end of a scope with `await using`', async () => {
    let cleaned = false;
    {
      await using life = new Lifecycle('scoped');
      await life.start(() => life.defer('thing', () => void (cleaned = true)));
    }
    expect(cleaned).toBe(true);
  });

  it('closing a part that never started is a no-op', async () => {
    const life = new Lifecycle('idle');
    await life.close();
    expect(life.state).toBe('closed');
  });

  it('a part ready once constructed begins running at once, and begins only once', async () => {
    const life = new Lifecycle('store');
    const closed: string[] = [];
    life.defer('file', () => void closed.push('file'));
    life.begin();
    expect(life.state).toBe('running');
    expect(() => life.begin()).toThrow(expect.objectContaining({ code: 'ILLEGAL_STATE', message: 'store is running: cannot begin' }) as Error);
    await expect(life.start(() => undefined)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    await life.close();
    expect(closed).toEqual(['file']);
  });

  it('drainAndClose drains first (once, whoever asks), then closes; from draining it waits for that drain', async () => {
    const life = new Lifecycle('part');
    const steps: string[] = [];
    life.begin();
    life.defer('file', () => void steps.push('closed'));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const draining = life.drain(async () => {
      await gate;
      steps.push('drained');
    });
    const closing = life.drainAndClose(() => void steps.push('second drain'));
    expect(life.state).toBe('draining');
    release();
    await Promise.all([draining, closing, life.drainAndClose()]);
    expect(steps).toEqual(['drained', 'closed']);
    expect(life.state).toBe('closed');
    const fresh = new Lifecycle('unstarted');
    await fresh.drainAndClose(() => void steps.push('never'));
    expect(fresh.state).toBe('closed');
    expect(steps).not.toContain('never');
  });
});
