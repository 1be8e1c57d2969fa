import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { synthesizeXaRun } from '@arteria/dicom';
import { ArteriaError } from '@arteria/protocol';
import { int } from './args.js';

/** `arteria gateway sample <file>`: a synthetic XA run (no patient data) to try a platform with. */
export async function writeSampleRun(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { frames: { type: 'string', default: '30' }, size: { type: 'string', default: '128' }, seed: { type: 'string', default: '1' } },
  });
  const file = positionals[0];
  if (file === undefined) throw new ArteriaError('CONFIG_INVALID', 'name the file to write: arteria gateway sample <file.dcm>');
  const size = int(values.size, '--size');
  const { bytes } = synthesizeXaRun({ seed: int(values.seed, '--seed'), rows: size, columns: size, frames: int(values.frames, '--frames') });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  process.stdout.write(`wrote ${file}: a synthetic XA run, ${values.frames} frames of ${size}x${size}\n`);
  return 0;
}
