import { ArteriaError } from '@arteria/protocol';
import type { AlgorithmCatalog } from './algorithms/live-registry.js';
import type { RegisteredAlgorithm } from './algorithms/registry.js';
import type { AlgorithmRunner } from './algorithms/sandbox.js';
import type { AlgorithmExecutor } from './worker.js';

/**
 * Runs a task's pinned algorithm version in the isolated runner, refusing a task whose
 * pinned digest is no longer installed here (a worker image older or newer than ingest's).
 */
export function registryExecutor(registry: AlgorithmCatalog, runner: AlgorithmRunner): AlgorithmExecutor {
  return {
    async execute(ref, input, signal, options = {}) {
      const algorithm = registry.resolve(`${ref.name}@${ref.version}`);
      if (algorithm.digest !== ref.digest) {
        throw new ArteriaError('UNKNOWN_ALGORITHM', `${ref.name}@${ref.version} with digest ${ref.digest} is not installed here (installed: ${algorithm.digest})`);
      }
      return runner.run(algorithm, input, { signal, requireDeidentified: options.requireDeidentified === true });
    },
    wantsWholeInput(ref) {
      // A version not installed here answers false: execute() then refuses it as before.
      let algorithm: RegisteredAlgorithm;
      try {
        algorithm = registry.resolve(`${ref.name}@${ref.version}`);
      } catch {
        return false;
      }
      return algorithm.digest === ref.digest && runner.wantsWholeInput(algorithm);
    },
  };
}
