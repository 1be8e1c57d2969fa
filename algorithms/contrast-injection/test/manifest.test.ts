import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { AlgorithmManifest } from '@arteria/sdk';
import { manifest, validateOutput } from './manifest.js';

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
    expect(validateOutput(ok)).toBe(true);
    expect(validateOutput({ ...ok, extra: 1 })).toBe(false);
    expect(validateOutput({ ...ok, curve: new Array<number>(65).fill(0) })).toBe(false);
    // contrastDetected and injection must agree.
    expect(validateOutput({ ...ok, contrastDetected: true })).toBe(false);
    const injection = { startFrame: 2, peakFrame: 5, endFrame: 8, startMs: 133.3, peakMs: 333.3, endMs: 533.3, peakOpacification: 0.3, confidence: 0.9 };
    expect(validateOutput({ ...ok, contrastDetected: true, injection })).toBe(true);
    expect(validateOutput({ ...ok, contrastDetected: false, injection })).toBe(false);
    expect(validateOutput({ ...ok, contrastDetected: true, injection: { ...injection, confidence: 1.5 } })).toBe(false);
    expect(validateOutput({ ...ok, contrastDetected: true, injection: { ...injection, startFrame: 1.5 } })).toBe(false);
  });
});
