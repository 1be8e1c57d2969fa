/**
 * An algorithm package as its own unit tests see it: the manifest parsed and checked by
 * the platform's registry, its model reference, and the platform's output check, so an
 * algorithm's tests validate outputs exactly as the platform will.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArteriaError } from '@arteria/protocol';
import type { AlgorithmManifest, ModelRef } from '@arteria/sdk';
import { AlgorithmRegistry, compileOutputCheck, type RegisteredAlgorithm } from '@arteria/worker';

export interface AlgorithmPackage {
  readonly dir: string;
  readonly manifest: AlgorithmManifest;
  /** The content digest every result of this version names. */
  readonly digest: string;
  /** The pinned model (name, digest, local path); undefined for plain-code algorithms. */
  readonly model: ModelRef | undefined;
  /** Why `output` would be refused (OUTPUT_INVALID), or undefined when the platform accepts it. */
  outputProblem(output: unknown): string | undefined;
}

/** Loads the package in `dir` (a path or a file: URL, e.g. `new URL('..', import.meta.url)`). */
export async function loadAlgorithmPackage(dir: string | URL): Promise<AlgorithmPackage> {
  const folder = path.resolve(dir instanceof URL ? fileURLToPath(dir) : dir);
  const algorithm = (await AlgorithmRegistry.load([folder])).list()[0] as RegisteredAlgorithm;
  const check = compileOutputCheck(algorithm);
  const { ref, modelPath } = algorithm;
  return {
    dir: folder,
    manifest: algorithm.manifest,
    digest: algorithm.digest,
    model: ref.model && modelPath ? { name: ref.model.name, digest: ref.model.digest, path: modelPath } : undefined,
    outputProblem(output) {
      try {
        check(output);
        return undefined;
      } catch (err) {
        if (err instanceof ArteriaError && err.code === 'OUTPUT_INVALID') return err.message;
        throw err;
      }
    },
  };
}
