import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';
import type { ModelRef } from '@arteria/sdk';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Reads a model file and checks it against the ref's digest, returning the bytes that
 * were checked (loading those, not the path again, leaves no window to swap the file).
 */
export async function readVerifiedModel(model: ModelRef, signal?: AbortSignal): Promise<Uint8Array> {
  if (model.path === undefined) {
    throw new ArteriaError('CONFIG_INVALID', `model ${model.name} has no local path to load from`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(model.path, { signal });
  } catch (err) {
    throw new ArteriaError('MODEL_UNAVAILABLE', `model ${model.name}: cannot read ${model.path}`, { cause: err });
  }
  const actual = sha256Digest(bytes);
  if (actual !== model.digest) {
    throw new ArteriaError('CHECKSUM_MISMATCH', `model ${model.name}: file ${model.path} has digest ${actual}, expected ${model.digest}`);
  }
  return bytes;
}
