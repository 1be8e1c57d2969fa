import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { AlgorithmManifest } from '@arteria/sdk';

/** The algorithm's manifest.json, parsed as the platform parses it. */
export const manifest = AlgorithmManifest.parse(JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8')));

/** A validator for the manifest's outputSchema. */
export const validateOutput = new Ajv2020({ allErrors: true }).compile(manifest.outputSchema);
