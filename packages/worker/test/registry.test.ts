import { fixtureAlgorithm } from '@arteria/testing';
import { createHash } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlgorithmRef, ArteriaError } from '@arteria/protocol';
import { AlgorithmRegistry } from '@arteria/worker';

const FIXTURES = fixtureAlgorithm('');
const FIXTURE_NAMES = ['bad-output', 'crash', 'echo', 'oom', 'slow', 'throws'];
const fixture = (name: string): string => path.join(FIXTURES, name);

let tmp: string;
let copies = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'arteria-registry-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Manifest = Record<string, unknown> & { input: Record<string, unknown>; resources: Record<string, unknown> };

/** A private copy of a fixture, its manifest optionally edited. */
async function copyFixture(name: string, edit?: (manifest: Manifest) => void): Promise<string> {
  const dir = path.join(tmp, `${name}-${++copies}`);
  await cp(fixture(name), dir, { recursive: true });
  if (edit) {
    const file = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    edit(manifest);
    await writeFile(file, JSON.stringify(manifest, null, 2));
  }
  return dir;
}

async function digestOf(dir: string): Promise<string> {
  const registry = await AlgorithmRegistry.load([dir]);
  const [only] = registry.list();
  if (!only) throw new Error('nothing loaded');
  return only.digest;
}

async function loadError(dirs: string[]): Promise<ArteriaError> {
  const err: unknown = await AlgorithmRegistry.load(dirs).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ArteriaError)) throw new Error(`expected an ArteriaError, got ${String(err)}`);
  return err;
}

function resolveError(registry: AlgorithmRegistry, spec: string): ArteriaError {
  try {
    registry.resolve(spec);
  } catch (err) {
    if (err instanceof ArteriaError) return err;
    throw err;
  }
  throw new Error(`${spec} resolved`);
}

describe('AlgorithmRegistry.load', () => {
  it('loads every fixture with a pinned, well-formed reference', async () => {
    const registry = await AlgorithmRegistry.load(FIXTURE_NAMES.map(fixture));
    const list = registry.list();
    expect(list.map((a) => a.manifest.name)).toEqual(FIXTURE_NAMES);
    for (const algorithm of list) {
      expect(algorithm.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(path.isAbsolute(algorithm.entryPath)).toBe(true);
      expect(algorithm.entryPath).toBe(path.join(fixture(algorithm.manifest.name), 'lib', 'index.js'));
      expect(AlgorithmRef.parse(algorithm.ref)).toEqual({ name: algorithm.manifest.name, version: '1.0.0', digest: algorithm.digest });
    }
    expect(new Set(list.map((a) => a.digest)).size).toBe(list.length);
  });

  it('gives the same digest for the same bytes, wherever they lie', async () => {
    const original = await digestOf(fixture('echo'));
    expect(await digestOf(fixture('echo'))).toBe(original);
    expect(await digestOf(await copyFixture('echo'))).toBe(original);
  });

  it('changes the digest when code, file names, file set or manifest change', async () => {
    const original = await digestOf(fixture('echo'));

    const edited = await copyFixture('echo');
    await appendFile(path.join(edited, 'lib', 'index.js'), '\n// one more line\n');
    expect(await digestOf(edited)).not.toBe(original);

    const added = await copyFixture('echo');
    await mkdir(path.join(added, 'lib', 'helpers'));
    await writeFile(path.join(added, 'lib', 'helpers', 'util.js'), 'export const x = 1;\n');
    expect(await digestOf(added)).not.toBe(original);

    const renamed = await copyFixture('echo', (m) => {
      m.entry = 'lib/main.js';
    });
    await rename(path.join(renamed, 'lib', 'index.js'), path.join(renamed, 'lib', 'main.js'));
    const renamedDigest = await digestOf(renamed);
    expect(renamedDigest).not.toBe(original);

    const retitled = await copyFixture('echo', (m) => {
      m.title = 'Echo, retitled';
    });
    expect(await digestOf(retitled)).not.toBe(original);

    // Files outside the built artifact (sources, notes) are not what runs.
    const notes = await copyFixture('echo');
    await writeFile(path.join(notes, 'README.md'), 'notes\n');
    expect(await digestOf(notes)).toBe(original);
  });

  it('pins the model file and refuses one whose SHA-256 differs from the manifest', async () => {
    const model = Buffer.from('not really onnx, but bytes all the same');
    const sha256 = createHash('sha256').update(model).digest('hex');
    const dir = await copyFixture('echo', (m) => {
      m.runtime = 'onnx';
      m.model = { name: 'echo-net', file: 'model/echo.onnx', sha256 };
    });
    await mkdir(path.join(dir, 'model'));
    await writeFile(path.join(dir, 'model', 'echo.onnx'), model);
    const [loaded] = (await AlgorithmRegistry.load([dir])).list();
    expect(loaded?.ref.model).toEqual({ name: 'echo-net', digest: `sha256:${sha256}` });
    expect(loaded?.modelPath).toBe(path.join(dir, 'model', 'echo.onnx'));

    await writeFile(path.join(dir, 'model', 'echo.onnx'), Buffer.concat([model, Buffer.from('!')]));
    const err = await loadError([dir]);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('model.sha256');
  });

  it('names the folder and the field of an invalid manifest', async () => {
    const dir = await copyFixture('echo', (m) => {
      delete m.resources.timeoutMs;
    });
    const err = await loadError([fixture('crash'), dir]);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(dir);
    expect(err.message).toContain('resources.timeoutMs');

    const unknownKey = await copyFixture('echo', (m) => {
      m.colour = 'blue';
    });
    expect((await loadError([unknownKey])).message).toContain(unknownKey);

    const badSchema = await copyFixture('echo', (m) => {
      m.outputSchema = { type: 'no-such-type' };
    });
    expect((await loadError([badSchema])).message).toContain('outputSchema');
  });

  it('refuses unreadable manifests, missing or escaping entries and duplicate versions', async () => {
    const notJson = await copyFixture('echo');
    await writeFile(path.join(notJson, 'manifest.json'), '{ nope');
    expect((await loadError([notJson])).message).toContain('not JSON');

    const noEntry = await copyFixture('echo', (m) => {
      m.entry = 'lib/missing.js';
    });
    expect((await loadError([noEntry])).message).toContain('entry');

    const escaping = await copyFixture('echo', (m) => {
      m.entry = '../echo-1/lib/index.js';
    });
    expect((await loadError([escaping])).message).toContain('outside the algorithm folder');

    const twin = await copyFixture('echo');
    const err = await loadError([fixture('echo'), twin]);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('echo@1.0.0');

    expect((await loadError([path.join(tmp, 'no-such-folder')])).code).toBe('CONFIG_INVALID');
  });
});

describe('AlgorithmRegistry.resolve', () => {
  let registry: AlgorithmRegistry;

  beforeAll(async () => {
    const versions = ['1.0.0', '1.2.0', '2.0.0', '1.2.5'];
    const dirs = await Promise.all(
      versions.map((version) =>
        copyFixture('echo', (m) => {
          m.version = version;
        }),
      ),
    );
    registry = await AlgorithmRegistry.load([...dirs, fixture('throws')]);
  });

  it('picks the highest version satisfying the range', () => {
    expect(registry.resolve('echo@^1').manifest.version).toBe('1.2.5');
    expect(registry.resolve('echo@1').manifest.version).toBe('1.2.5');
    expect(registry.resolve('echo@1.2.x').manifest.version).toBe('1.2.5');
    expect(registry.resolve('echo@~1.2.0').manifest.version).toBe('1.2.5');
    expect(registry.resolve('echo@1.0.x').manifest.version).toBe('1.0.0');
    expect(registry.resolve('echo@1.2.0').manifest.version).toBe('1.2.0');
    expect(registry.resolve('echo@*').manifest.version).toBe('2.0.0');
    expect(registry.resolve('echo@>=1.1.0 <2').manifest.version).toBe('1.2.5');
    expect(registry.resolve('throws@^1').manifest.name).toBe('throws');
  });

  it('keeps versions side by side, each with its own folder and digest', () => {
    const echoes = registry.list().filter((a) => a.manifest.name === 'echo');
    expect(echoes.map((a) => a.manifest.version)).toEqual(['1.0.0', '1.2.0', '1.2.5', '2.0.0']);
    expect(new Set(echoes.map((a) => a.dir)).size).toBe(4);
    expect(new Set(echoes.map((a) => a.digest)).size).toBe(4);
    expect(registry.resolve('echo@2').ref.version).toBe('2.0.0');
  });

  it('says UNKNOWN_ALGORITHM and lists what exists', () => {
    const noVersion = resolveError(registry, 'echo@^3');
    expect(noVersion.code).toBe('UNKNOWN_ALGORITHM');
    expect(noVersion.message).toContain('1.0.0, 1.2.0, 1.2.5, 2.0.0');

    const noName = resolveError(registry, 'stenosis@^1');
    expect(noName.code).toBe('UNKNOWN_ALGORITHM');
    expect(noName.message).toContain('stenosis');
    expect(noName.message).toContain('echo, throws');

    expect(resolveError(registry, 'echo@not a range').code).toBe('UNKNOWN_ALGORITHM');
  });

  it('resolves within the versions enabled for the device: a site on 1.0 stays on 1.0', () => {
    expect(registry.resolve('echo@^1', ['1.0.x']).manifest.version).toBe('1.0.0');
    expect(registry.resolve('echo@^1', ['1.0.x', '~1.2.0']).manifest.version).toBe('1.2.5');
    expect(registry.resolve('echo@*', ['*']).manifest.version).toBe('2.0.0');

    const newer = (() => {
      try {
        registry.resolve('echo@2', ['^1']);
      } catch (err) {
        return err as ArteriaError;
      }
      throw new Error('resolved');
    })();
    expect(newer.code).toBe('ALGORITHM_NOT_ENABLED');
    expect(newer.message).toContain('2.0.0');
    expect(newer.message).toContain('echo@^1');
    expect(() => registry.resolve('echo@^1', [])).toThrow(/no version is enabled here/);
    // A request for something that does not exist says so, whatever is enabled.
    expect(() => registry.resolve('echo@^3', ['*'])).toThrow(expect.objectContaining({ code: 'UNKNOWN_ALGORITHM' }) as Error);
  });
});
