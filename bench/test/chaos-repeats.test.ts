import { describe, expect, it } from 'vitest';
import { isRepeatAcrossKill } from '../src/chaos/row.js';

describe('a chaos row tells a repeat across a kill from a platform duplicate', () => {
  const kill = { sentAt: 10_000, exitedAt: 10_020 };
  const facts = (completedAt: number, publishedAt: number) => ({ recordHash: undefined, completedAt, publishedAt });

  it('excuses two copies of a result recorded before the kill and noted as published after it', () => {
    expect(isRepeatAcrossKill(2, facts(9_990, 16_000), [kill])).toBe(true);
    expect(isRepeatAcrossKill(2, facts(10_010, 10_015), [kill])).toBe(true);
  });

  it('counts every other repeat', () => {
    expect(isRepeatAcrossKill(3, facts(9_990, 16_000), [kill])).toBe(false); // more than one repeat
    expect(isRepeatAcrossKill(2, facts(9_000, 9_005), [kill])).toBe(false); // noted before the kill: the repeat came from elsewhere
    expect(isRepeatAcrossKill(2, facts(12_000, 12_005), [kill])).toBe(false); // recorded after the kill
    expect(isRepeatAcrossKill(2, facts(9_990, 16_000), [])).toBe(false); // no kill in the row
    expect(isRepeatAcrossKill(2, undefined, [kill])).toBe(false); // nothing recorded
    expect(isRepeatAcrossKill(1, facts(9_990, 16_000), [kill])).toBe(false); // delivered once
  });
});
