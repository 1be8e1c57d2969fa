import { ArteriaError, type AlgorithmRef } from '@arteria/protocol';
import type { AlgorithmCatalog } from '../algorithms/live-registry.js';
import type { RegisteredAlgorithm } from '../algorithms/registry.js';
import type { IncrementalRunner } from './incremental-runner.js';
import type { IncrementalExecutor } from './segmented-steps.js';

/** Runs a run's pinned version's incremental contract, refusing a digest not installed here (as registryExecutor does). */
export function registryIncremental(registry: AlgorithmCatalog, runner: IncrementalRunner): IncrementalExecutor {
  const pinned = (ref: AlgorithmRef): RegisteredAlgorithm => {
    const algorithm = registry.resolve(`${ref.name}@${ref.version}`);
    if (algorithm.digest !== ref.digest) throw new ArteriaError('UNKNOWN_ALGORITHM', `${ref.name}@${ref.version} with digest ${ref.digest} is not installed here (installed: ${algorithm.digest})`);
    return algorithm;
  };
  return {
    open: (ref, run, header, requireDeidentified) => runner.open(pinned(ref), run, header, requireDeidentified),
    segment: (ref, run, step) => runner.segment(pinned(ref), run, step),
    checkpoint: (ref, live) => runner.checkpoint(pinned(ref), live),
    finish: (ref, run, step) => runner.finish(pinned(ref), run, step),
    release: (ref, run) => {
      let algorithm: RegisteredAlgorithm;
      try {
        algorithm = pinned(ref);
      } catch {
        return; // not installed (any more): no thread of it holds the run
      }
      runner.release(algorithm, run);
    },
  };
}
