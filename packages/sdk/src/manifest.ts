import { z } from 'zod';
import { ALGORITHM_NAME_PATTERN } from '@arteria/protocol';

const semverExact = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, 'must be an exact semver version');

/**
 * An algorithm's manifest (`manifest.json` beside its code). The registry pins each
 * version to the SHA-256 of its artifact; every result names that digest.
 */
export const AlgorithmManifest = z.strictObject({
  name: z.string().regex(ALGORITHM_NAME_PATTERN),
  version: semverExact,
  title: z.string().min(1).max(200),
  runtime: z.enum(['node', 'onnx']),
  /** Built JavaScript module, relative to the manifest, whose default export is an Algorithm. */
  entry: z.string().min(1),
  model: z
    .strictObject({ name: z.string(), file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })
    .optional(),
  input: z.strictObject({
    modalities: z.array(z.string().regex(/^[A-Z]{2}$/)).min(1),
    minFrames: z.number().int().positive(),
    maxFrames: z.number().int().positive(),
    maxRows: z.number().int().positive(),
    maxColumns: z.number().int().positive(),
    frameRateHz: z.strictObject({ min: z.number().positive(), max: z.number().positive() }).optional(),
  }),
  /** JSON Schema (draft 2020-12) of the output; the platform validates every output against it. */
  outputSchema: z.record(z.string(), z.unknown()),
  resources: z.strictObject({
    memoryMb: z.number().int().min(16).max(65536),
    timeoutMs: z.number().int().min(10).max(600_000),
    gpu: z.boolean(),
  }),
  intendedUse: z.string().min(1),
  limitations: z.array(z.string()),
  regulatoryClass: z.string().min(1),
});
export type AlgorithmManifest = z.infer<typeof AlgorithmManifest>;
