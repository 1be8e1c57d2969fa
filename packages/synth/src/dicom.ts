import { SYNTHETIC_DEIDENTIFICATION, newUid, writeSyntheticXaRun, type PatientFields } from '@arteria/dicom';
import type { BalloonRunInput } from './options.js';
import { renderBalloonRun, type BalloonRunTruth } from './render.js';

export interface SynthesizedBalloonRun {
  /** A multi-frame XA Part 10 file. */
  bytes: Buffer;
  truth: BalloonRunTruth;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

/** Renders a balloon run and writes it as a multi-frame XA DICOM file; same options, same bytes. */
export function synthesizeBalloonRun(input: BalloonRunInput = {}, patient?: PatientFields): SynthesizedBalloonRun {
  const { pixels, truth } = renderBalloonRun(input);
  const o = truth.options;
  const key = JSON.stringify(o);
  const studyInstanceUid = newUid(`balloon-study:${key}`);
  const seriesInstanceUid = newUid(`balloon-series:${key}`);
  const sopInstanceUid = newUid(`balloon-instance:${key}`);
  const bytes = writeSyntheticXaRun(o, {
    pixels,
    frameTimeMs: truth.frameTimeMs,
    patient: { name: 'Synthetic^Angioplasty', id: `SYN-B-${o.seed}`, birthDate: '19700101', sex: 'O', ...patient },
    // Made-up patient fields: the run holds no one's data.
    deidentificationMethod: SYNTHETIC_DEIDENTIFICATION,
    studyInstanceUid,
    seriesInstanceUid,
    sopInstanceUid,
  });
  return { bytes, truth, studyInstanceUid, seriesInstanceUid, sopInstanceUid };
}
