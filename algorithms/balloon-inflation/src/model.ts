import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ModelRef } from '@arteria/sdk';

/** Tensor names of the shipped model: frames [N, CHANNELS, SIDE, SIDE] in, probabilities [N, 2] (balloon visible, balloon inflated) out. */
export const MODEL_INPUT = 'frames';
export const MODEL_OUTPUT = 'probabilities';

interface ManifestModel {
  model?: { name: string; file: string; sha256: string };
}

let shipped: Readonly<ModelRef> | undefined;

/** The model this algorithm version ships, as named and pinned by its manifest (read once: a run asks for it at every segment). */
export function shippedModel(): Readonly<ModelRef> {
  shipped ??= Object.freeze(readShippedModel());
  return shipped;
}

function readShippedModel(): ModelRef {
  const manifestUrl = new URL('../manifest.json', import.meta.url);
  const manifest = JSON.parse(readFileSync(manifestUrl, 'utf8')) as ManifestModel;
  if (manifest.model === undefined) throw new Error('the balloon-inflation manifest names no model');
  return { name: manifest.model.name, digest: `sha256:${manifest.model.sha256}`, path: fileURLToPath(new URL(manifest.model.file, manifestUrl)) };
}
