import { epochNow, toArteriaError, type AlgorithmRef, type RequestV1, type ResultV1 } from '@arteria/protocol';
import { SHADOW_FORMAT, inShadowShare, type ShadowOutcome, type ShadowPlan, type ShadowRecord } from './algorithms/shadow.js';
import type { InputSource } from '@arteria/ports';
import type { AlgorithmExecutor } from './worker.js';

export interface ShadowRunnerDeps {
  /** One plan per algorithm name. */
  plans: readonly ShadowPlan[];
  /** Pins a plan's exact version to what this process loaded (its content digest). */
  refOf: (name: string, version: string) => AlgorithmRef;
  executor: AlgorithmExecutor;
  inputs: InputSource;
  /** Where shadow outcomes go (the artifact store). */
  record: (record: ShadowRecord, name: string) => Promise<void>;
  maxInputBytes: number;
}

/**
 * Runs a delivered request again with its algorithm's shadow version, when the request
 * is in the shadow's share, and records both outcomes. It runs after the delivered result
 * is published and acknowledged, so it never delays or changes what a device receives;
 * its own failures are the shadow's outcome, not the request's.
 */
export class ShadowRunner {
  #plans: ReadonlyMap<string, ShadowPlan>;

  constructor(private readonly deps: ShadowRunnerDeps) {
    this.#plans = new Map(deps.plans.map((p) => [p.name, p]));
  }

  /** Replaces the plans (the store changed while the process runs); runs already started finish on theirs. */
  setPlans(plans: readonly ShadowPlan[]): void {
    this.#plans = new Map(plans.map((p) => [p.name, p]));
  }

  /** Whether `request`, delivered as `result`, gets a shadow run. */
  wants(result: ResultV1): ShadowPlan | undefined {
    const algorithm = result.algorithm;
    const plan = algorithm === undefined ? undefined : this.#plans.get(algorithm.name);
    if (plan === undefined || algorithm === undefined || plan.version === algorithm.version) return undefined;
    if (result.status === 'rejected' || !inShadowShare(result.requestId, plan.percent)) return undefined;
    return plan;
  }

  async run(request: RequestV1, result: ResultV1, signal: AbortSignal): Promise<ShadowRecord | undefined> {
    const plan = this.wants(result);
    const delivered = result.algorithm;
    const input = request.inputs[0];
    if (plan === undefined || delivered === undefined || input === undefined) return undefined;
    const ref = this.deps.refOf(plan.name, plan.version);
    const started = epochNow();
    let shadow: ShadowOutcome;
    try {
      const chunks = this.deps.inputs.stream(input, { maxBytes: this.deps.maxInputBytes, signal });
      const { output } = await this.deps.executor.execute(ref, { chunks, size: input.size }, signal);
      shadow = { version: ref.version, digest: ref.digest, status: 'ok', output, latencyMs: epochNow() - started };
    } catch (err) {
      // Cut short by a drain: not an outcome of the shadow version.
      if (signal.aborted) return undefined;
      shadow = { version: ref.version, digest: ref.digest, status: 'failed', errorCode: toArteriaError(err).code, latencyMs: epochNow() - started };
    }
    const t = result.timings;
    const end = t.computed ?? t.resultPublished;
    const record: ShadowRecord = {
      format: SHADOW_FORMAT,
      requestId: request.id,
      tenant: request.tenant,
      device: request.device,
      at: new Date().toISOString(),
      delivered: {
        version: delivered.version,
        digest: delivered.digest,
        status: result.status,
        ...(result.error ? { errorCode: result.error.code } : {}),
        ...(result.status === 'ok' ? { output: result.output } : {}),
        latencyMs: t.leased !== undefined && end !== undefined ? Math.max(0, end - t.leased) : 0,
      },
      shadow,
    };
    await this.deps.record(record, plan.name);
    return record;
  }
}
