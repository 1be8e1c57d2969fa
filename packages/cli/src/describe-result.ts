import type { GatewayResult } from '@arteria/gateway';

/** A short human summary of a result for the terminal. */
/**
 * One line for an answer. With `askedAt` (epoch ms: when this send began, or when this
 * gateway started), an answer received before it is marked as given again: the run was
 * answered a moment earlier (a re-send within answerAgainWithinMs) and was not run again.
 */
export function describeResult(device: string, result: GatewayResult, askedAt?: number): string {
  const t = result.timings;
  const e2e = t.acquired !== undefined ? `${Math.round(t.received - t.acquired)} ms` : '?';
  const algorithm = result.algorithm ? `${result.algorithm.name}@${result.algorithm.version}` : 'platform';
  const again = askedAt !== undefined && t.received < askedAt ? ` [answered at ${new Date(t.received).toISOString()}, before this send; not run again]` : '';
  if (result.status !== 'ok') return `${device} <- ${algorithm} ${result.status} ${result.error?.code ?? ''}: ${result.error?.message ?? ''} (${e2e})${again}`;
  return `${device} <- ${algorithm} ok: ${summariseOutput(result.output)} (e2e ${e2e})${again}`;
}

function summariseOutput(output: unknown): string {
  if (typeof output === 'object' && output !== null && 'contrastDetected' in output) {
    const o = output as { contrastDetected: boolean; injection?: { startFrame: number; peakFrame: number; endFrame: number } | null };
    if (!o.contrastDetected || !o.injection) return 'no contrast injection';
    return `contrast injection frames ${o.injection.startFrame}-${o.injection.endFrame} (peak ${o.injection.peakFrame})`;
  }
  if (typeof output === 'object' && output !== null && 'inflationDetected' in output) {
    const o = output as { inflationDetected: boolean; events?: { startFrame: number; endFrame: number; confidence: number }[] };
    if (!o.inflationDetected || !o.events?.length) return 'no balloon inflation';
    return o.events.map((e) => `balloon inflated frames ${e.startFrame}-${e.endFrame} (confidence ${e.confidence.toFixed(2)})`).join(', ');
  }
  const json = JSON.stringify(output) ?? 'undefined';
  return json.length > 100 ? `${json.slice(0, 97)}...` : json;
}
