import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The house's shape (docs/architecture.md, "Packages"): ESLint checks who imports whom;
// this checks what a lint rule cannot see: sizes, cycles inside a package, the docs table.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = readdirSync(path.join(ROOT, 'packages')).filter((p) => statSync(path.join(ROOT, 'packages', p, 'src'), { throwIfNoEntry: false })?.isDirectory());

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}
const lines = (file: string): number => readFileSync(file, 'utf8').split('\n').length;

describe('the house', () => {
  it('no package holds more than a fifth of the source', () => {
    const sizes = Object.fromEntries(PACKAGES.map((p) => [p, sourceFiles(path.join(ROOT, 'packages', p, 'src')).reduce((n, f) => n + lines(f), 0)]));
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    const over = Object.entries(sizes).filter(([, n]) => n > total / 5);
    expect(over, `total ${total} lines`).toEqual([]);
  });

  it('no import cycle between the files of a package', () => {
    const cycles: string[] = [];
    for (const p of PACKAGES) {
      const files = sourceFiles(path.join(ROOT, 'packages', p, 'src'));
      const edges = new Map<string, string[]>();
      for (const f of files) {
        const targets = [...readFileSync(f, 'utf8').matchAll(/^(?:import|export)\s(?!type\b)[^;]*?from\s*'(\.[^']+)'/gms)].map((m) => path.resolve(path.dirname(f), m[1]!.replace(/\.js$/, '.ts')));
        edges.set(f, targets);
      }
      const state = new Map<string, 'open' | 'done'>();
      const visit = (f: string, trail: string[]): void => {
        if (state.get(f) === 'done') return;
        if (state.get(f) === 'open') {
          cycles.push(trail.slice(trail.indexOf(f)).concat(f).map((x) => path.relative(ROOT, x)).join(' -> '));
          return;
        }
        state.set(f, 'open');
        for (const t of edges.get(f) ?? []) visit(t, [...trail, f]);
        state.set(f, 'done');
      };
      for (const f of files) visit(f, []);
    }
    expect(cycles).toEqual([]);
  });

  it('the architecture document names every package and what it may import', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
    const table = doc.slice(doc.indexOf('### Packages and what each may import'));
    for (const p of PACKAGES) expect(table, p).toContain(`| \`${p}\` |`);
  });

  it('the document\'s "may import" column is layers.json, the table ESLint enforces', () => {
    const layers = JSON.parse(readFileSync(path.join(ROOT, 'layers.json'), 'utf8')) as Record<string, string[] | '*'>;
    const doc = readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
    const table = doc.slice(doc.indexOf('### Packages and what each may import')).split('\n### ')[0] ?? '';
    const names = new Set(Object.keys(layers).filter((n) => !n.startsWith('$')));
    expect([...names].filter((n) => !n.includes('/')).sort()).toEqual([...PACKAGES].sort());
    for (const [name, allowed] of Object.entries(layers)) {
      if (name.startsWith('$')) continue;
      const row = table.split('\n').find((l) => l.includes(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      const cell = row?.split('|').at(-2) ?? '';
      if (allowed === '*') {
        expect(cell, name).toContain('all of the above');
        continue;
      }
      const named = [...new Set((cell.match(/[a-z][a-z0-9-]*/g) ?? []).filter((w) => names.has(w)))].sort();
      expect(named, name).toEqual([...allowed].sort());
    }
  });
});
