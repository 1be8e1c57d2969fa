import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaleTarget } from '@arteria/ports';

export interface ScaleTargetUnderTest {
  target: ScaleTarget;
  close(): Promise<void>;
}

/**
 * The contract every `ScaleTarget` keeps: the count last set is the count read back
 * (`desired`), workers taking work never exceed it once settled, scale to zero is allowed,
 * and a count that is not a whole number >= 0 is refused (CONFIG_INVALID) without
 * changing anything.
 */
export function scaleTargetConformance(name: string, setup: () => Promise<ScaleTargetUnderTest>): void {
  describe(`ScaleTarget conformance: ${name}`, () => {
    let under: ScaleTargetUnderTest;
    beforeAll(async () => {
      under = await setup();
    }, 60_000);
    afterAll(() => under.close());

    it('reads back the count last set, down to zero and up again', async () => {
      for (const count of [3, 0, 7, 2]) {
        await under.target.setReplicas(count);
        const replicas = await under.target.getReplicas();
        expect(replicas.desired, `after setReplicas(${count})`).toBe(count);
        if (replicas.ready !== undefined) expect(replicas.ready).toBeLessThanOrEqual(Math.max(count, replicas.ready === 0 ? 0 : count));
      }
    });

    it('refuses a count that is not a whole number >= 0, and changes nothing', async () => {
      await under.target.setReplicas(2);
      for (const bad of [-1, 1.5, Number.NaN]) {
        await expect(under.target.setReplicas(bad), String(bad)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      }
      expect((await under.target.getReplicas()).desired).toBe(2);
    });

    it('names its kind', () => {
      expect(under.target.kind).toMatch(/^[a-z][a-z0-9:-]*$/);
    });
  });
}
