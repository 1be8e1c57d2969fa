/**
 * A CycloneDX 1.5 SBOM of an algorithm artifact, made offline: the algorithm itself,
 * its model (a machine-learning-model component with its SHA-256), and the npm packages
 * its package.json depends on, resolved with their transitive dependencies through the
 * nearest package-lock.json. Deterministic: no timestamp, no random serial number, so
 * the same package always gives the same SBOM (and the same artifact digest).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const PackageJson = z.looseObject({
  name: z.string().optional(),
  version: z.string().optional(),
  license: z.string().optional(),
  dependencies: z.record(z.string(), z.string()).optional(),
});

const LockEntry = z.looseObject({
  version: z.string().optional(),
  resolved: z.string().optional(),
  integrity: z.string().optional(),
  license: z.string().optional(),
  link: z.boolean().optional(),
  dependencies: z.record(z.string(), z.string()).optional(),
  optionalDependencies: z.record(z.string(), z.string()).optional(),
});
type LockEntry = z.infer<typeof LockEntry>;
const PackageLock = z.looseObject({ packages: z.record(z.string(), LockEntry) });

export interface SbomInput {
  dir: string;
  name: string;
  version: string;
  contentDigest: string;
  model?: { name: string; sha256: string; file: string };
  /** The tool named in metadata. */
  tool: { name: string; version: string };
}

interface Component {
  type: 'library' | 'application' | 'machine-learning-model';
  'bom-ref': string;
  name: string;
  version?: string;
  purl?: string;
  hashes?: { alg: 'SHA-256' | 'SHA-512'; content: string }[];
  licenses?: { license: { id?: string; name?: string } }[];
  properties?: { name: string; value: string }[];
}

const purlOf = (name: string, version: string): string => `pkg:npm/${name.startsWith('@') ? `%40${name.slice(1)}` : name}@${version}`;

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

/** The nearest package-lock.json at or above `dir`, and the lock key of `dir` inside it. */
async function findLock(dir: string): Promise<{ lock: z.infer<typeof PackageLock>; key: string } | undefined> {
  for (let at = dir; ; at = path.dirname(at)) {
    const parsed = PackageLock.safeParse(await readJson(path.join(at, 'package-lock.json')).catch(() => undefined));
    if (parsed.success) return { lock: parsed.data, key: path.relative(at, dir).split(path.sep).join('/') };
    if (path.dirname(at) === at) return undefined;
  }
}

/** npm's lookup: `from/node_modules/name`, then each parent folder's node_modules, up to the root. */
function locate(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  for (let at = from; ; ) {
    const key = at === '' ? `node_modules/${name}` : `${at}/node_modules/${name}`;
    if (packages[key] !== undefined) return key;
    if (at === '') return undefined;
    const cut = at.lastIndexOf('/node_modules/');
    at = cut >= 0 ? at.slice(0, cut) : at.includes('/') ? at.slice(0, at.lastIndexOf('/')) : '';
  }
}

function hashOf(integrity: string | undefined): Component['hashes'] {
  const m = integrity?.match(/^sha512-(.+)$/);
  return m?.[1] ? [{ alg: 'SHA-512', content: Buffer.from(m[1], 'base64').toString('hex') }] : undefined;
}

export async function buildSbom(input: SbomInput): Promise<Record<string, unknown>> {
  const rootRef = `${input.name}@${input.version}`;
  const pkg = PackageJson.safeParse(await readJson(path.join(input.dir, 'package.json')).catch(() => ({})));
  const declared = pkg.success ? (pkg.data.dependencies ?? {}) : {};
  const components = new Map<string, Component>();
  const edges = new Map<string, Set<string>>([[rootRef, new Set()]]);
  const found = Object.keys(declared).length > 0 ? await findLock(input.dir) : undefined;

  const visit = (from: string, fromRef: string, name: string, range: string): void => {
    const key = found ? locate(found.lock.packages, from, name) : undefined;
    let entry = key ? found?.lock.packages[key] : undefined;
    let at = key;
    if (entry?.link && entry.resolved !== undefined) {
      at = entry.resolved;
      entry = found?.lock.packages[entry.resolved];
    }
    const version = entry?.version ?? range;
    const ref = purlOf(name, version);
    edges.get(fromRef)?.add(ref);
    if (components.has(ref)) return;
    const c: Component = { type: 'library', 'bom-ref': ref, name, version, purl: ref };
    const hashes = hashOf(entry?.integrity);
    if (hashes) c.hashes = hashes;
    if (entry?.license) c.licenses = [{ license: { id: entry.license } }];
    if (entry === undefined) c.properties = [{ name: 'arteria:resolved', value: `false (no package-lock entry; declared ${range})` }];
    components.set(ref, c);
    edges.set(ref, new Set());
    if (entry === undefined || at === undefined) return;
    for (const [dep, depRange] of Object.entries({ ...entry.dependencies, ...entry.optionalDependencies })) visit(at, ref, dep, depRange);
  };
  for (const [name, range] of Object.entries(declared).sort(([a], [b]) => (a < b ? -1 : 1))) visit(found?.key ?? '', rootRef, name, range);

  if (input.model) {
    const ref = `model:${input.model.name}`;
    components.set(ref, {
      type: 'machine-learning-model',
      'bom-ref': ref,
      name: input.model.name,
      hashes: [{ alg: 'SHA-256', content: input.model.sha256 }],
      properties: [{ name: 'arteria:file', value: input.model.file }],
    });
    edges.get(rootRef)?.add(ref);
  }
  const sorted = [...components.values()].sort((a, b) => (a['bom-ref'] < b['bom-ref'] ? -1 : 1));
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      tools: { components: [{ type: 'application', name: input.tool.name, version: input.tool.version }] },
      component: {
        type: 'application',
        'bom-ref': rootRef,
        name: input.name,
        version: input.version,
        hashes: [{ alg: 'SHA-256', content: input.contentDigest.replace(/^sha256:/, '') }],
      },
    },
    components: sorted,
    dependencies: [...edges].sort(([a], [b]) => (a < b ? -1 : 1)).map(([ref, on]) => ({ ref, dependsOn: [...on].sort() })),
  };
}
