import { Ajv2020 } from 'ajv/dist/2020.js';
import { ArteriaError } from '@arteria/protocol';
import type { RegisteredAlgorithm } from './registry.js';

export type OutputCheck = (output: unknown) => void;

/**
 * Compiles an algorithm version's outputSchema once. The returned check throws
 * OUTPUT_INVALID naming the first failing path. One Ajv instance per version, so two
 * versions whose schemas share an `$id` do not collide.
 */
export function compileOutputCheck(algorithm: RegisteredAlgorithm): OutputCheck {
  const label = `${algorithm.manifest.name}@${algorithm.manifest.version}`;
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  let validate: ReturnType<Ajv2020['compile']>;
  try {
    validate = ajv.compile(algorithm.manifest.outputSchema);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${label}: outputSchema does not compile: ${(err as Error).message}`, { cause: err });
  }
  return (output) => {
    if (validate(output)) return;
    const first = validate.errors?.[0];
    const where = first?.instancePath ? first.instancePath : '/';
    const detail = first ? `${first.message ?? 'is invalid'}${first.keyword === 'additionalProperties' ? ` (${JSON.stringify(first.params)})` : ''}` : 'is invalid';
    throw new ArteriaError('OUTPUT_INVALID', `${label} output at ${where} ${detail}`);
  };
}
