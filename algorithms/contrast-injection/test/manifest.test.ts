import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { formatReport, testAlgorithm } from '@arteria/algorithm-kit';
import { AlgorithmManifest } from '@arteria/sdk';
import { algorithmPackage, manifest, outputProblem } from './manifest.js';

describe('manifest.json', () => {
  it('is a valid algorithm manifest', async () => {
    const raw: unknown = JSON.parse(await readFile(new URL('../manifest.json', import.meta.url), 'utf8'));
    const parsed = AlgorithmManifest.safeParse(raw);
    expect(parsed.success, parsed.error?.message).toBe(true);
    expect(manifest).toMatchObject({ name: 'contrast-injection', version: '1.0.0', runtime: 'node', entry: 'dist/index.js' });
    expect(manifest.input).toMatchObject({ modalities: ['XA', 'RF'], minFrames: 4, maxFrames: 2000, maxRows: 4096, maxColumns: 4096 });
    expect(manifest.resources.gpu).toBe(false);
  });

  it('points at the built entry', async () => {
    await expect(readFile(new URL(`../${manifest.entry}`, import.meta.url))).resolves.toBeInstanceOf(Buffer);
  });

  it('has an output schema that rejects what the algorithm must not return', () => {
    const ok = { contrastDetected: false, injection: null, frames: 10, frameTimeMs: 66.667, curve: [0, 0.001] };
    expect(outputProblem(ok)).toBeUndefined();
    expect(outputProblem({ ...ok, extra: 1 })).toBeDefined();
    expect(outputProblem({ ...ok, curve: new Array<number>(65).fill(0) })).toBeDefined();
    // contrastDetected and injection must agree.
    expect(outputProblem({ ...ok, contrastDetected: true })).toBeDefined();
    const injection = { startFrame: 2, peakFrame: 5, endFrame: 8, startMs: 133.3, peakMs: 333.3, endMs: 533.3, peakOpacification: 0.3, confidence: 0.9 };
    expect(outputProblem({ ...ok, contrastDetected: true, injection })).toBeUndefined();
    expect(outputProblem({ ...ok, contrastDetected: false, injection })).toBeDefined();
    expect(outputProblem({ ...ok, contrastDetected: true, injection: { ...injection, confidence: 1.5 } })).toBeDefined();
    expect(outputProblem({ ...ok, contrastDetected: true, injection: { ...injection, startFrame: 1.5 } })).toBeDefined();
  });

  it('passes `arteria algorithm test`: golden cases, determinism, limits and input contract through the platform runner', { timeout: 120_000 }, async () => {
    const report = await testAlgorithm(new URL('..', import.meta.url).pathname);
    expect(report.checks.filter((c) => c.status === 'fail'), formatReport(report)).toEqual([]);
    expect(report.recorded).toBe(0);
    expect(report.digest).toBe(algorithmPackage.digest);
  });
});
