import { decodeRun } from '@arteria/dicom';
import type { Algorithm } from './algorithm.js';

export interface RunOnDicomOptions {
  signal?: AbortSignal;
}

/**
 * Decodes a Part 10 run the way the platform does and runs the algorithm on it: what
 * algorithm authors call from their own tests.
 */
export async function runAlgorithmOnDicom<O>(algorithm: Algorithm<O>, bytes: Uint8Array, options: RunOnDicomOptions = {}): Promise<O> {
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const { header, frames } = await decodeRun(bytes);
  return await algorithm.run({ header, frames }, { signal });
}
