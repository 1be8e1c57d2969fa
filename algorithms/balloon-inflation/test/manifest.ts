import { loadAlgorithmPackage } from '@arteria/algorithm-kit';

/** This package as the platform's registry loads it (manifest, digest, pinned model). */
export const algorithmPackage = await loadAlgorithmPackage(new URL('..', import.meta.url));
export const { manifest } = algorithmPackage;

/** Why the platform would refuse `output` (its outputSchema check), or undefined when it accepts it. */
export const outputProblem = (output: unknown): string | undefined => algorithmPackage.outputProblem(output);
