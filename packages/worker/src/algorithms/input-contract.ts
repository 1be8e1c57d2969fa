import type { DicomHeader, FrameLayout } from '@arteria/dicom';
import type { AlgorithmManifest } from '@arteria/sdk';

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
