import { readFileSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// The house's layers (docs/architecture.md): ports at the bottom, one package per engine,
// one per plane, operations over the planes, the platform composition on top. A package's
// source imports only the packages layers.json allows it (never an upper layer, another
// engine or another plane), and only through a package's entry (no deep imports).
const layers = JSON.parse(readFileSync(new URL('./layers.json', import.meta.url), 'utf8'));
const deep = { group: ['@arteria/*/**', '!@arteria/inference/runner-backend'], message: 'import a package through its entry, not its files' };
const allowed = (names) => ({ group: ['@arteria/*', ...names.map((n) => `!@arteria/${n}`)], message: 'this import crosses the house layering (layers.json; docs/architecture.md, "Packages and what each may import")' });
const layering = (files, names) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns: names === '*' ? [deep] : [deep, allowed(names)] }] } });
const sourceOf = (name) => (name.includes('/') ? `${name}/src/**/*.ts` : `packages/${name}/src/**/*.ts`);

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
  layering(['**/*.ts'], '*'),
  ...Object.entries(layers)
    .filter(([name]) => !name.startsWith('$'))
    .map(([name, names]) => layering([sourceOf(name)], names)),
);
