import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));

async function yamlUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlUnder(file)));
    else if (entry.name.endsWith('.yaml')) out.push(file);
  }
  return out;
}

describe('release workflow', () => {
  it('bumps the tag of every image the manifests run, in every overlay that names it', async () => {
    const manifests = await yamlUnder(path.join(DEPLOY, 'k8s'));
    const images = new Set<string>();
    for (const file of manifests) for (const match of (await readFile(file, 'utf8')).matchAll(/^\s+image: ([a-z0-9-]+)\s*$/gm)) images.add(match[1] ?? '');
    expect([...images].sort()).toEqual(['arteria', 'arteria-gpu']);
    const workflow = await readFile(path.join(DEPLOY, 'ci', 'gitops-workflow.yaml'), 'utf8');
    const bumped = new Set([...workflow.matchAll(/kustomize edit set image "([a-z0-9-]+)=\*:\$\{\{ inputs\.tag \}\}(-gpu)?"/g)].map((m) => m[1] ?? ''));
    expect([...bumped].sort()).toEqual([...images].sort());
    // Every overlay that pins the GPU image pins it with the -gpu tag the workflow writes.
    for (const file of manifests.filter((f) => f.includes(`${path.sep}overlays${path.sep}`) && f.endsWith('kustomization.yaml'))) {
      const text = await readFile(file, 'utf8');
      const gpu = /- name: arteria-gpu\n(?:\s+newName: \S+\n)?\s+newTag: (\S+)/.exec(text);
      const cpu = /- name: arteria\n(?:\s+newName: \S+\n)?\s+newTag: (\S+)/.exec(text);
      if (gpu) expect(gpu[1]).toBe(`${cpu?.[1] ?? ''}-gpu`);
    }
  });
});
