import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { defineAlgorithm, runAlgorithmOnDicom, type RunInput } from '@arteria/sdk';

const frameSummary = defineAlgorithm({
  run({ frames, header }: RunInput, { signal }) {
    signal.throwIfAborted();
    return { frames: frames.frameCount, rows: frames.rows, modality: header.modality, sixteenBit: frames.pixels instanceof Uint16Array };
  },
});

describe('runAlgorithmOnDicom', () => {
  it('decodes the run and hands the frames and header to the algorithm', async () => {
    const { bytes } = synthesizeXaRun({ seed: 3, rows: 32, columns: 48, frames: 6, bitsStored: 10 });
    await expect(runAlgorithmOnDicom(frameSummary, bytes)).resolves.toEqual({ frames: 6, rows: 32, modality: 'XA', sixteenBit: true });
  });

  it('passes the caller’s signal, and does not start when it is already aborted', async () => {
    const { bytes } = synthesizeXaRun({ seed: 3, rows: 16, columns: 16, frames: 4 });
    const seen: AbortSignal[] = [];
    const spy = defineAlgorithm({
      run(_input, { signal }) {
        seen.push(signal);
        return 1;
      },
    });
    const controller = new AbortController();
    await runAlgorithmOnDicom(spy, bytes, { signal: controller.signal });
    expect(seen).toEqual([controller.signal]);
    controller.abort(new Error('cancelled'));
    await expect(runAlgorithmOnDicom(spy, bytes, { signal: controller.signal })).rejects.toThrow('cancelled');
    expect(seen).toHaveLength(1);
  });

  it('surfaces decoding errors as ArteriaErrors', async () => {
    await expect(runAlgorithmOnDicom(frameSummary, new Uint8Array(10))).rejects.toMatchObject({ code: 'INVALID_DICOM' });
  });

  it('awaits asynchronous algorithms', async () => {
    const slow = defineAlgorithm({ run: async ({ frames }) => Promise.resolve(frames.frameCount * 2) });
    const { bytes } = synthesizeXaRun({ seed: 1, rows: 16, columns: 16, frames: 5 });
    await expect(runAlgorithmOnDicom(slow, bytes)).resolves.toBe(10);
  });
});
