import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';


// The house's layers (docs/architecture.md): ports at the bottom, one package per engine,
// one per plane, operations over the planes, the platform composition on top. A package
// imports only from layers below it, never another engine or another plane, and only
// through a package's entry (no deep imports).
const deep = { group: ['@arteria/*/**', '!@arteria/inference/runner-backend'], message: 'import a package through its entry, not its files' };
const engines = ['engine-sqlite', 'engine-nats', 'engine-sqs', 'engine-s3', 'engine-mqtt'];
const planes = ['ingest', 'worker', 'autoscaler'];
const above = (...names) => ({ group: names.map((n) => `@arteria/${n}`), message: 'this import crosses the house layering (docs/architecture.md, "Packages and what each may import")' });
const layering = (files, ...forbidden) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns: [deep, ...(forbidden.length > 0 ? [above(...forbidden)] : [])] }] } });

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.d.ts', '.arteria/**', 'vitest.config.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      'no-empty': ['error', { allowEmptyCatch: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  layering(['**/*.ts']),
  layering(['packages/ports/**/*.ts'], ...engines, ...planes, 'operations', 'platform', 'telemetry', 'cli', 'gateway', 'fleet'),
  ...engines.map((e) => layering([`packages/${e}/src/**/*.ts`], ...engines.filter((x) => x !== e && !(e === 'engine-sqs' && x === 'engine-sqlite')), ...planes, 'operations', 'platform', 'cli', 'gateway', 'fleet')),
  ...planes.map((p) => layering([`packages/${p}/src/**/*.ts`], ...engines, ...planes.filter((x) => x !== p), 'operations', 'platform', 'cli', 'gateway', 'fleet')),
  layering(['packages/operations/src/**/*.ts'], ...engines, 'platform', 'cli', 'gateway', 'fleet'),
  layering(['packages/platform/src/**/*.ts'], 'cli', 'gateway', 'fleet'),
);
