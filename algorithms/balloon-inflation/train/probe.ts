import { writeFileSync } from 'node:fs';
import { decodeFrames } from '@arteria/dicom';
import { OnnxRuntimeBackend } from '@arteria/inference';
import { frameProbabilities, shippedModel } from '@arteria/balloon-inflation';
import { dicomOf, runsIn } from './evaluate.js';

/**
 * `node train/dist/probe.js FOLDER OUT.json`: the shipped model's per-frame probabilities
 * (balloon visible, balloon inflated) for every run of a rendered set, with the run's
 * description, so that the post-processing can be studied and tuned on a validation set
 * without running the model again.
 */
const [folder, out] = process.argv.slice(2);
if (folder === undefined || out === undefined) throw new Error('usage: probe.js FOLDER OUT.json');
const backend = new OnnxRuntimeBackend();
const rows = [];
for (const { name, meta } of runsIn(folder)) {
  const { header, frames } = decodeFrames(dicomOf(folder, name, meta));
  const p = await frameProbabilities({ header, frames }, backend, shippedModel(), AbortSignal.timeout(300_000));
  rows.push({ name, meta, visible: p.visible, inflated: p.inflated });
  console.log(name);
}
await backend.close();
writeFileSync(out, JSON.stringify(rows));
