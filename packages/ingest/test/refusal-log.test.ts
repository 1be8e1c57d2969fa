import { describe, expect, it } from 'vitest';
import { RefusalLog } from '@arteria/ingest';

describe('RefusalLog', () => {
  it('counts every refusal by code and keeps only the latest, newest first, with bounded messages', () => {
    const log = new RefusalLog(3);
    for (let i = 0; i < 5; i++) {
      log.record({ at: i, tenant: 'acme', device: `d${i}`, requestId: `r${i}`, code: i % 2 === 0 ? 'INVALID_JSON' : 'NOT_AUTHORIZED', message: 'x'.repeat(2000) });
    }
    const summary = log.summary();
    expect(summary.total).toBe(5);
    expect(summary.byCode).toEqual({ INVALID_JSON: 3, NOT_AUTHORIZED: 2 });
    expect(summary.recent.map((r) => r.requestId)).toEqual(['r4', 'r3', 'r2']);
    expect(summary.recent[0]?.message).toHaveLength(500);
    expect(log.summary(1).recent.map((r) => r.requestId)).toEqual(['r4']);
  });
});
