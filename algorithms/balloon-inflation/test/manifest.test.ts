import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { formatReport, testAlgorithm } from '@arteria/algorithm-kit';
import { AlgorithmManifest } from '@arteria/sdk';
import { CHANNELS, MODEL_INPUT, MODEL_OUTPUT, SIDE, shippedModel } from '@arteria/balloon-inflation';
import { algorithmPackage, manifest, outputProblem } from './manifest.js';

describe('manifest.json and the shipped model', () => {
  it('is a valid onnx-runtime manifest', async () => {
    const raw: unknown = JSON.parse(await readFile(new URL('../manifest.json', import.meta.url), 'utf8'));
    const parsed = AlgorithmManifest.safeParse(raw);
    expect(parsed.success, parsed.error?.message).toBe(true);
    expect(manifest).toMatchObject({ name: 'balloon-inflation', version: '3.2.0', runtime: 'onnx', entry: 'dist/index.js' });
    expect(manifest.limitations.join(' ')).toMatch(/not clinically validated/);
    await expect(readFile(new URL(`../${manifest.entry}`, import.meta.url))).resolves.toBeInstanceOf(Buffer);
  });

  it('pins the model file by its SHA-256', async () => {
    const bytes = await readFile(new URL(`../${manifest.model!.file}`, import.meta.url));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.model!.sha256);
    expect(bytes.length).toBeLessThan(2 * 1024 * 1024);
    expect(shippedModel()).toMatchObject({ name: manifest.model!.name, digest: `sha256:${manifest.model!.sha256}` });
  });

  it('is an ONNX model that ONNX Runtime runs on any number of frames', async () => {
    const session = await InferenceSession.create(shippedModel().path!);
    try {
      expect(session.inputNames).toEqual([MODEL_INPUT]);
      expect(session.outputNames).toEqual([MODEL_OUTPUT]);
      for (const frames of [1, 3]) {
        const data = Float32Array.from({ length: frames * CHANNELS * SIDE * SIDE }, (_, i) => ((i * 7919) % 100) / 500);
        const result = await session.run({ [MODEL_INPUT]: new Tensor('float32', data, [frames, CHANNELS, SIDE, SIDE]) });
        const output = result[MODEL_OUTPUT]!;
        expect(output.dims).toEqual([frames, 2]);
        for (const p of output.data as Float32Array) {
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1);
        }
      }
    } finally {
      await session.release();
    }
  });

  it('has an output schema that rejects what the algorithm must not return', () => {
    const event = { type: 'balloon-inflation', startFrame: 3, endFrame: 9, startMs: 200, endMs: 600, confidence: 0.9 };
    const ok = { inflationDetected: true, balloon: 'inflated', events: [event], frames: 20, frameTimeMs: 66.667, balloonFrames: 20, peakInflatedProbability: 0.97, weakCandidates: [] };
    expect(outputProblem(ok)).toBeUndefined();
    expect(outputProblem({ ...ok, extra: 1 })).toBeDefined();
    expect(outputProblem({ ...ok, events: [{ ...event, type: 'stent' }] })).toBeDefined();
    expect(outputProblem({ ...ok, events: [{ ...event, confidence: 1.2 }] })).toBeDefined();
    expect(outputProblem({ ...ok, events: [{ ...event, startFrame: -1 }] })).toBeDefined();
    expect(outputProblem({ ...ok, balloon: 'maybe' })).toBeDefined();
    expect(outputProblem({ ...ok, markerFrames: 20 })).toBeDefined();
  });

  it('passes `arteria algorithm test`: golden cases, determinism, limits and input contract through the platform runner', { timeout: 120_000 }, async () => {
    const report = await testAlgorithm(new URL('..', import.meta.url).pathname);
    expect(report.checks.filter((c) => c.status === 'fail'), formatReport(report)).toEqual([]);
    expect(report.recorded).toBe(0);
    expect(report.digest).toBe(algorithmPackage.digest);
  });
});
