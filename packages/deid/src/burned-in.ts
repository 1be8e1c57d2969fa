import { describeTransferSyntax } from '@arteria/dicom';
import { ArteriaError } from '@arteria/protocol';
import type { DeidentificationProfile } from './profile.js';

/** Syntaxes whose pixels masking edits in place (uncompressed). */
const MASKABLE_TRANSFER_SYNTAXES = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']);

/**
 * Whether a run's pixels may carry burned-in annotation (a patient's name in the image) that
 * de-identification must mask or refuse. Burned In Annotation (0028,0301) YES says so. A
 * Secondary Capture (a screen or video capture: the lab's monitor shows the patient's name)
 * that does not say NO may, too: PS3.3 leaves the attribute optional there, and an absent one
 * means unknown, not none.
 */
export function mayHaveBurnedInAnnotation(burnedInAnnotation: string | undefined, sopClassUid: string | undefined): boolean {
  const said = (burnedInAnnotation ?? '').trim().toUpperCase();
  if (said === 'YES') return true;
  return said !== 'NO' && isSecondaryCapture(sopClassUid);
}

/** Secondary Capture Image Storage and its multi-frame classes (1.2.840.10008.5.1.4.1.1.7 and .7.x). */
function isSecondaryCapture(sopClassUid: string | undefined): boolean {
  const uid = (sopClassUid ?? '').replace(/\0/g, '').trim();
  return uid === '1.2.840.10008.5.1.4.1.1.7' || uid.startsWith('1.2.840.10008.5.1.4.1.1.7.');
}

/** What of an object the burned-in rule looks at: three attributes, read from any header. */
export interface BurnedInFacts {
  burnedInAnnotation: string | undefined;
  sopClassUid: string | undefined;
  transferSyntaxUid: string;
}

/** DEIDENTIFICATION_REFUSED for burned-in annotation, with `brief`: the reason in 64 characters (a DICOM Error Comment's room). */
export class BurnedInRefusal extends ArteriaError {
  readonly brief: string;
  constructor(message: string, brief: string) {
    super('DEIDENTIFICATION_REFUSED', message);
    this.brief = brief;
  }
}

/**
 * DEIDENTIFICATION_REFUSED, saying why, when `profile` refuses an object with these facts:
 * under `refuse`, one that may carry burned-in annotation; under `mask`, one whose pixels are
 * compressed (masking cannot edit them). Undefined when de-identification takes it. The
 * DICOM port asks this before it acknowledges an instance, de-identification when it runs.
 */
export function burnedInRefusal(profile: DeidentificationProfile, facts: BurnedInFacts): BurnedInRefusal | undefined {
  if (!mayHaveBurnedInAnnotation(facts.burnedInAnnotation, facts.sopClassUid)) return undefined;
  if (profile.burnedInAnnotation.policy === 'refuse') {
    const stated = (facts.burnedInAnnotation ?? '').trim().toUpperCase() === 'YES';
    return new BurnedInRefusal(
      stated
        ? 'the run has burned-in annotation (0028,0301) and the site policy refuses such runs'
        : 'the run is a secondary capture (a screen or video capture) that does not say it is free of burned-in annotation (0028,0301 is not NO), and the site policy refuses runs that may carry it (mask its regions, or have the capture state NO)',
      'may show burned-in annotation (0028,0301): refused (site policy)',
    );
  }
  if (!MASKABLE_TRANSFER_SYNTAXES.has(facts.transferSyntaxUid)) {
    return new BurnedInRefusal(
      `the run has burned-in annotation (0028,0301) in compressed pixels (${describeTransferSyntax(facts.transferSyntaxUid)}), which masking cannot edit; the run is refused (send it uncompressed to have it masked)`,
      'burned-in annotation in compressed pixels: refused (site policy)',
    );
  }
  return undefined;
}
