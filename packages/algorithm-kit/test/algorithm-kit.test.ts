import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstDifference, initAlgorithm, openArtifact, packAlgorithm, readArchive, testAlgorithm, writeArchive, type CheckResult } from '@arteria/algorithm-kit';

let root: string;
let nodeDir: string;
let onnxDir: string;
const tool = { name: 'arteria', version: 'test' };

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'arteria-kit-'));
  nodeDir = path.join(root, 'frame-peak');
  onnxDir = path.join(root, 'frame-peak-onnx');
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const failed = (checks: readonly CheckResult[]): CheckResult[] => checks.filter((c) => c.status === 'fail');

/** A copy of a package with one file rewritten, to break it on purpose. */
async function variant(from: string, name: string, file: string, edit: (text: string) => string): Promise<string> {
  const dir = path.join(root, name);
  await cp(from, dir, { recursive: true });
  const target = path.join(dir, file);
  await writeFile(target, edit(await readFile(target, 'utf8')));
  return dir;
}

describe('algorithm init', () => {
  it('scaffolds a node package that passes its own tests, golden outputs recorded', { timeout: 120_000 }, async () => {
    const result = await initAlgorithm({ dir: nodeDir, runtime: 'node' });
    expect(result.name).toBe('frame-peak');
    expect(result.files).toEqual(expect.arrayContaining(['manifest.json', 'src/index.js', 'golden/cases.json', 'eval/dataset.json', 'eval/score.js', 'MODEL_CARD.md', 'model/README.md']));
    expect(failed(result.report.checks)).toEqual([]);
    expect(result.report.recorded).toBe(3);
    const kinds = new Set(result.report.checks.map((c) => c.kind));
    expect([...kinds].sort()).toEqual(['contract', 'determinism', 'golden', 'manifest', 'resources', 'streaming']);
    // A second test run compares against what init recorded, and records nothing.
    const again = await testAlgorithm(nodeDir);
    expect(again).toMatchObject({ ok: true, recorded: 0 });
  });

  it('scaffolds an onnx package with a valid starter model run through ONNX Runtime', { timeout: 120_000 }, async () => {
    const result = await initAlgorithm({ dir: onnxDir, runtime: 'onnx' });
    expect(result.files).toContain('model/frame-peak-onnx.onnx');
    expect(failed(result.report.checks)).toEqual([]);
    const manifest = JSON.parse(await readFile(path.join(onnxDir, 'manifest.json'), 'utf8')) as { runtime: string; model: { sha256: string } };
    expect(manifest.runtime).toBe('onnx');
    // Same answers as the plain-code starter (within float32 rounding): the model computes what the node code does.
    const golden = (dir: string): Promise<unknown> => readFile(path.join(dir, 'golden/cases.json'), 'utf8').then((t) => (JSON.parse(t) as { cases: { expect: unknown }[] }).cases.map((c) => c.expect));
    expect(firstDifference(await golden(nodeDir), await golden(onnxDir), 1e-5)).toBeUndefined();
  });

  it('refuses a folder that is not empty and a name the platform would refuse', async () => {
    await expect(initAlgorithm({ dir: nodeDir })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(initAlgorithm({ dir: path.join(root, 'Bad_Name') })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('algorithm test', () => {
  it('fails a changed answer with the JSON path that differs', { timeout: 120_000 }, async () => {
    const dir = await variant(nodeDir, 'changed', 'src/index.js', (s) => s.replace('peakFrame,\n    peakMs', 'peakFrame: brightness.length > 13 ? 1 : peakFrame,\n    peakMs'));
    const report = await testAlgorithm(dir);
    expect(report.ok).toBe(false);
    const golden = failed(report.checks).filter((c) => c.kind === 'golden');
    expect(golden.map((c) => c.name)).toEqual(['contrast peaking at frame 10', 'MONOCHROME1, 8-bit']);
    expect(golden[0]?.detail).toMatch(/\/peakFrame: expected \d+, got 1/);
  });

  it('fails an output outside the manifest schema, through the platform runner (OUTPUT_INVALID)', { timeout: 120_000 }, async () => {
    const dir = await variant(nodeDir, 'bad-output', 'src/index.js', (s) => s.replace('darkening: round(darkening),', 'darkening: round(darkening), note: "extra",'));
    const report = await testAlgorithm(dir);
    const golden = failed(report.checks).filter((c) => c.kind === 'golden');
    expect(golden).toHaveLength(3);
    expect(golden[0]?.detail).toMatch(/^OUTPUT_INVALID: .*additional propert.*note/);
    expect(failed(report.checks).some((c) => c.kind === 'contract')).toBe(true);
  });

  it('fails an algorithm that answers differently on a second run (determinism)', { timeout: 120_000 }, async () => {
    const dir = await variant(nodeDir, 'stateful', 'src/index.js', (s) => s.replace('const algorithm = {', 'let calls = 0;\nconst algorithm = {').replace('signal.throwIfAborted();', 'signal.throwIfAborted();\n    calls++;').replace('return answer(frames, brightnessCurve(frames, means));', 'return { ...answer(frames, brightnessCurve(frames, means)), peakFrame: calls % 2 };'));
    const report = await testAlgorithm(dir, { update: true });
    const determinism = failed(report.checks).filter((c) => c.kind === 'determinism');
    expect(determinism.length).toBeGreaterThanOrEqual(3);
    expect(determinism[0]?.detail).toMatch(/^first .*then /);
  });

  it('fails a run that exceeds the manifest time limit, and one that claims a shorter contract than the code handles', { timeout: 120_000 }, async () => {
    const slow = await variant(nodeDir, 'slow', 'manifest.json', (s) => s.replace('"timeoutMs": 10000', '"timeoutMs": 10'));
    const slowCode = path.join(slow, 'src/index.js');
    await writeFile(slowCode, (await readFile(slowCode, 'utf8')).replace('signal.throwIfAborted();', 'signal.throwIfAborted();\n    for (const end = Date.now() + 200; Date.now() < end; );'));
    const report = await testAlgorithm(slow);
    expect(failed(report.checks).find((c) => c.kind === 'resources')?.detail).toMatch(/^ALGORITHM_TIMEOUT/);

    const strict = await variant(nodeDir, 'strict', 'src/index.js', (s) => s.replace('signal.throwIfAborted();', "signal.throwIfAborted();\n    if (frames.frameCount < 4) throw new Error('needs 4 frames');"));
    const contract = failed((await testAlgorithm(strict)).checks).filter((c) => c.kind === 'contract');
    expect(contract.map((c) => c.name)).toEqual(['shortest run the contract accepts (2 frames)']);
    expect(contract[0]?.detail).toMatch(/ALGORITHM_FAILED: .*needs 4 frames/);
  });

  it('reports a package the platform would not load, without running anything', async () => {
    const dir = await variant(nodeDir, 'bad-manifest', 'manifest.json', (s) => s.replace('"entry": "src/index.js"', '"entry": "src/missing.js"'));
    const report = await testAlgorithm(dir);
    expect(report).toMatchObject({ ok: false, digest: undefined });
    expect(report.checks[0]?.detail).toMatch(/entry file .*missing\.js cannot be read/);
  });
});

describe('algorithm pack', () => {
  it('writes the same content-addressed archive for the same package, with its SBOM and model', { timeout: 60_000 }, async () => {
    const out = path.join(root, 'artifacts');
    const first = await packAlgorithm({ dir: onnxDir, outDir: out, tool });
    const second = await packAlgorithm({ dir: onnxDir, outDir: out, tool });
    expect(second).toEqual(first);
    expect(path.basename(first.file)).toBe(`frame-peak-onnx-0.1.0-sha256-${first.digest.slice(7)}.tar`);
    const opened = await openArtifact(first.file);
    expect(opened.digest).toBe(first.digest);
    expect(opened.entries.map((e) => e.path)).toEqual(['MODEL_CARD.md', 'README.md', 'artifact.json', 'manifest.json', 'model/frame-peak-onnx.onnx', 'sbom.cdx.json', 'src/index.js']);
    const sbom = JSON.parse(Buffer.from(opened.entries.find((e) => e.path === 'sbom.cdx.json')!.bytes).toString('utf8')) as { bomFormat: string; components: { type: string; hashes: { content: string }[] }[] };
    const manifest = JSON.parse(await readFile(path.join(onnxDir, 'manifest.json'), 'utf8')) as { model: { sha256: string } };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.components).toEqual([expect.objectContaining({ type: 'machine-learning-model', hashes: [{ alg: 'SHA-256', content: manifest.model.sha256 }] })]);
    // The content digest is the one the platform's registry pins and every result names.
    expect(first.contentDigest).toBe((await testAlgorithm(onnxDir)).digest);
  });

  it("lists a workspace algorithm's npm dependencies, transitively, from package-lock.json", { timeout: 60_000 }, async () => {
    const packed = await packAlgorithm({ dir: new URL('../../../algorithms/contrast-injection', import.meta.url).pathname, outDir: path.join(root, 'bundled'), tool });
    const sbomEntry = (await openArtifact(packed.file)).entries.find((e) => e.path === 'sbom.cdx.json')!;
    const sbom = JSON.parse(Buffer.from(sbomEntry.bytes).toString('utf8')) as { components: { purl: string }[]; dependencies: { ref: string; dependsOn: string[] }[] };
    const purls = sbom.components.map((c) => c.purl);
    expect(purls).toEqual(expect.arrayContaining(['pkg:npm/%40arteria/sdk@0.1.0', 'pkg:npm/%40arteria/protocol@0.1.0']));
    expect(purls.some((p) => p.startsWith('pkg:npm/zod@'))).toBe(true); // through @arteria/protocol
    expect(sbom.dependencies.find((d) => d.ref === 'contrast-injection@1.0.0')?.dependsOn).toEqual(['pkg:npm/%40arteria/protocol@0.1.0', 'pkg:npm/%40arteria/sdk@0.1.0']);
  });

  it('reads back what it writes, and refuses entries that would escape their folder', () => {
    const entries = [
      { path: 'b.txt', bytes: Buffer.from('two') },
      { path: `${'d/'.repeat(60)}long.txt`, bytes: Buffer.from('deep') },
      { path: 'a.txt', bytes: new Uint8Array(0) },
    ];
    const archive = writeArchive(entries);
    expect(archive.length % 512).toBe(0);
    expect(readArchive(archive).map((e) => [e.path, Buffer.from(e.bytes).toString()])).toEqual([
      ['a.txt', ''],
      ['b.txt', 'two'],
      [`${'d/'.repeat(60)}long.txt`, 'deep'],
    ]);
    expect(() => writeArchive([{ path: '../x', bytes: new Uint8Array(1) }])).toThrow(expect.objectContaining({ code: 'ARTIFACT_INVALID' }));
    expect(() => readArchive(archive.subarray(0, 512))).toThrow(expect.objectContaining({ code: 'ARTIFACT_INVALID' }));
  });
});
