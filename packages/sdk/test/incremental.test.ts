import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { checkIncremental, decodeState, defineAlgorithm, encodeState, incrementalAlgorithmOnDicom, type IncrementalAlgorithm } from '@arteria/sdk';

interface SumState {
  seen: number;
  sums: number[];
  reported: boolean;
}

/** Mean pixel value per frame; one event when a frame's mean first passes 100. */
function frameMeans(offByOne: boolean): IncrementalAlgorithm<SumState, number[]> {
  return {
    createState: () => ({ seen: 0, sums: [], reported: false }),
    onFrames(state, { firstFrame, frames }) {
      const plane = frames.rows * frames.columns;
      const events = [];
      for (let i = 0; i < frames.frameCount; i++) {
        let sum = 0;
        for (let p = 0; p < plane; p++) sum += frames.pixels[i * plane + p]!;
        state.sums.push(sum / plane);
        if (!state.reported && sum / plane > 100) {
          state.reported = true;
          events.push({ key: 'bright', type: 'bright', frame: firstFrame + i });
        }
      }
      state.seen += frames.frameCount;
      return events;
    },
    finish: (state) => (offByOne ? state.sums.slice(1) : state.sums),
  };
}

const oneShot = (frames: { rows: number; columns: number; frameCount: number; pixels: Uint8Array | Uint16Array }): number[] => {
  const plane = frames.rows * frames.columns;
  return Array.from({ length: frames.frameCount }, (_, f) => {
    let sum = 0;
    for (let p = 0; p < plane; p++) sum += frames.pixels[f * plane + p]!;
    return sum / plane;
  });
};

describe('the incremental contract', () => {
  const { bytes } = synthesizeXaRun({ seed: 5, rows: 16, columns: 16, frames: 11 });

  it('checkIncremental passes an algorithm whose last segment gives the one-shot output', async () => {
    const good = defineAlgorithm({ run: ({ frames }) => oneShot(frames), incremental: frameMeans(false) });
    const run = await checkIncremental(good, bytes, { segmentSizes: [1, 4, 11] });
    expect(run.output).toHaveLength(11);
    expect(run.largestCheckpointBytes).toBeGreaterThan(0);
  });

  it('checkIncremental names an incremental output that differs from the one-shot one', async () => {
    const bad = defineAlgorithm({ run: ({ frames }) => oneShot(frames), incremental: frameMeans(true) });
    await expect(checkIncremental(bad, bytes)).rejects.toMatchObject({ code: 'ALGORITHM_FAILED' });
    await expect(checkIncremental(bad, bytes)).rejects.toThrow(/differs from run's/);
  });

  it('a state that holds a class instance does not survive its checkpoint', async () => {
    class Counter {
      n = 0;
      bump(): void {
        this.n++;
      }
    }
    const classy = defineAlgorithm({
      run: ({ frames }) => frames.frameCount,
      incremental: {
        createState: () => ({ counter: new Counter() }),
        onFrames(state: { counter: Counter }, { frames }) {
          for (let i = 0; i < frames.frameCount; i++) state.counter.bump();
          return [];
        },
        finish: (state: { counter: Counter }) => state.counter.n,
      },
    });
    await expect(incrementalAlgorithmOnDicom(classy, bytes, { checkpoint: false })).resolves.toMatchObject({ output: 11 });
    await expect(incrementalAlgorithmOnDicom(classy, bytes)).rejects.toThrow(/bump is not a function/);
  });

  it('checkpoints keep typed arrays binary, refuse functions, and reject bytes that are not a checkpoint', () => {
    const state = { grid: new Float32Array([1.5, 2.5]), n: 3 };
    expect(decodeState(encodeState(state))).toEqual(state);
    expect(() => encodeState({ f: () => 1 })).toThrow(expect.objectContaining({ code: 'ALGORITHM_FAILED' }));
    expect(() => decodeState(new Uint8Array([9, 1, 2]))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('writes checkpoints as before (the format byte, then V8 serialisation), each in a buffer of its own', () => {
    const state = { segments: [new Float32Array(4096).fill(0.25)], meanSum: new Float64Array([1, 2]), seen: 10 };
    const bytes = encodeState(state);
    // A checkpoint written by an earlier version is read by this one and the other way round.
    expect(Buffer.from(bytes).equals(Buffer.concat([Buffer.of(1), serialize(state)]))).toBe(true);
    expect(decodeState(Buffer.concat([Buffer.of(1), serialize(state)]))).toEqual(state);
    // Transferable to another thread as it is.
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.byteLength).toBe(bytes.buffer.byteLength);
  });
});
