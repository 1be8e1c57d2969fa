import { z } from 'zod';
import { AlgorithmSpec } from '@arteria/protocol';

/** Attributes of a run that routing looks at (read on-site, before de-identification). */
export interface RunAttributes {
  sopClassUid: string;
  seriesDescription: string;
  protocolName: string;
  numberOfFrames: number;
}

/** One routing rule: every condition given must hold; the first matching rule wins. */
export const RouteRule = z.strictObject({
  sopClassUids: z.array(z.string().regex(/^[0-9.]{1,64}$/)).max(32).optional(),
  /** Regular expression (case-insensitive) on Series Description. */
  seriesDescription: z.string().max(200).optional(),
  /** Regular expression (case-insensitive) on Protocol Name. */
  protocolName: z.string().max(200).optional(),
  minFrames: z.number().int().nonnegative().optional(),
  maxFrames: z.number().int().positive().optional(),
  /** Algorithms the matching runs go to; empty means the run is not sent. */
  algorithms: z.array(AlgorithmSpec).max(8),
});
export type RouteRule = z.infer<typeof RouteRule>;

/** Compiles regexes once; an invalid expression fails here, before a config is applied. */
export function compileRoutes(rules: readonly RouteRule[]): (run: RunAttributes) => string[] | undefined {
  const compiled = rules.map((rule) => ({
    rule,
    series: rule.seriesDescription === undefined ? undefined : new RegExp(rule.seriesDescription, 'i'),
    protocol: rule.protocolName === undefined ? undefined : new RegExp(rule.protocolName, 'i'),
  }));
  return (run) => {
    for (const { rule, series, protocol } of compiled) {
      if (rule.sopClassUids && !rule.sopClassUids.includes(run.sopClassUid)) continue;
      if (series && !series.test(run.seriesDescription)) continue;
      if (protocol && !protocol.test(run.protocolName)) continue;
      if (rule.minFrames !== undefined && run.numberOfFrames < rule.minFrames) continue;
      if (rule.maxFrames !== undefined && run.numberOfFrames > rule.maxFrames) continue;
      return [...rule.algorithms];
    }
    return undefined;
  };
}
