// De-identification throughput: in memory (bytes handed to send()) and streamed (a file:
// header rewritten, pixels copied). Run after building: node packages/gateway/scripts/bench-deidentify.mjs
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesizeXaRun } from '@arteria/dicom';
import { DeidentificationKey, DeidentificationProfile, deidentify, deidentifyFile } from '@arteria/gateway';

const ROUNDS = 5;
const source = join(tmpdir(), `arteria-bench-run-${process.pid}.dcm`);
const target = join(tmpdir(), `arteria-bench-out-${process.pid}.dcm`);
const run = synthesizeXaRun({ seed: 1, rows: 512, columns: 512, frames: 100, bitsStored: 12 });
writeFileSync(source, run.bytes);
const key = new DeidentificationKey(Buffer.alloc(32, 1));
const profile = DeidentificationProfile.parse({});
const mb = run.bytes.length / 1e6;
try {
  let start = performance.now();
  for (let i = 0; i < ROUNDS; i += 1) deidentify(run.bytes, profile, key);
  const inMemoryMs = (performance.now() - start) / ROUNDS;
  start = performance.now();
  for (let i = 0; i < ROUNDS; i += 1) {
    rmSync(target, { force: true });
    await deidentifyFile(source, target, profile, key);
  }
  const streamedMs = (performance.now() - start) / ROUNDS;
  console.log(`run of ${mb.toFixed(1)} MB (512x512x100, 16-bit):`);
  console.log(`  in memory      ${inMemoryMs.toFixed(0)} ms  ${((mb / inMemoryMs) * 1000).toFixed(0)} MB/s`);
  console.log(`  streamed file  ${streamedMs.toFixed(0)} ms  ${((mb / streamedMs) * 1000).toFixed(0)} MB/s (with fsync)`);
} finally {
  rmSync(source, { force: true });
  rmSync(target, { force: true });
}
