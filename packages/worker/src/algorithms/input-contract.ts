import type { DicomHeader, FrameLayout } from '@arteria/dicom';
import type { AlgorithmManifest } from '@arteria/sdk';

/**
 * Why a run may not be run on the platform as it stands: it does not declare that it was
 * de-identified (Patient Identity Removed YES and a De-identification Method, as the
 * gateway writes them). Undefined when it does.
 */
export function deidentificationProblem(header: Pick<DicomHeader, 'patientIdentityRemoved' | 'deidentificationMethod'>): string | undefined {
  if (header.patientIdentityRemoved === 'YES' && header.deidentificationMethod !== '') return undefined;
  const removed = header.patientIdentityRemoved === '' ? 'absent' : header.patientIdentityRemoved;
  return `the input does not declare de-identification (Patient Identity Removed (0012,0062): ${removed}; De-identification Method (0012,0063): ${header.deidentificationMethod === '' ? 'absent' : 'present'}), and its tenant does not allow identified inputs`;
}

/**
 * Checks a decoded run against the manifest's input contract. Returns why it does not
 * fit (the message of an UNSUPPORTED_DICOM error), or undefined when it does.
 */
export function inputContractProblem(
  contract: AlgorithmManifest['input'],
  header: DicomHeader,
  frames: FrameLayout,
): string | undefined {
  if (!contract.modalities.includes(header.modality)) {
    return `modality ${header.modality || '(none)'} is not accepted (accepted: ${contract.modalities.join(', ')})`;
  }
  if (frames.frameCount < contract.minFrames || frames.frameCount > contract.maxFrames) {
    return `${frames.frameCount} frames is outside the accepted ${contract.minFrames}..${contract.maxFrames}`;
  }
  if (frames.rows > contract.maxRows || frames.columns > contract.maxColumns) {
    return `frame size ${frames.rows}x${frames.columns} exceeds the accepted ${contract.maxRows}x${contract.maxColumns}`;
  }
  // Only checked when the file states its frame timing; otherwise the decoder's default applies.
  if (contract.frameRateHz && header.frameTimeMs !== undefined && header.frameTimeMs > 0) {
    const rateHz = 1000 / header.frameTimeMs;
    const { min, max } = contract.frameRateHz;
    if (rateHz < min || rateHz > max) {
      return `frame rate ${rateHz.toFixed(2)} Hz is outside the accepted ${min}..${max} Hz`;
    }
  }
  return undefined;
}
