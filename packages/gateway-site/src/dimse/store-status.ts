import { BurnedInRefusal } from '@arteria/deid';
import { ArteriaError } from '@arteria/protocol';

/** C-STORE failure statuses (PS3.4 Annex B.2.3); every one tells the modality the object is not safe with us. */
export const STORE_STATUS = {
  /** Refused: Out of Resources (disk, full outbox): the modality keeps the object and may retry later. */
  outOfResources: 0xa700,
  /** Error: Data Set does not match SOP Class (the data set names another SOP class or instance than its command). */
  datasetMismatch: 0xa900,
  /** Error: Cannot understand (truncated, unparsable, or no UIDs): sending the same bytes again will not help. */
  cannotUnderstand: 0xc000,
  /**
   * Error: Cannot understand, in its own code (Cxxx leaves xxx to the implementation): the
   * site's de-identification policy refuses the object; sending it again will not help. (A
   * general Refused: Not Authorized, 0x0124, is not a C-STORE status modalities know; DCMTK
   * calls it unknown.)
   */
  refusedByPolicy: 0xc124,
} as const;

/** A data set that parses but is not the object its C-STORE command announced. */
export class DatasetMismatch extends ArteriaError {
  constructor(message: string) {
    super('INVALID_DICOM', message);
    this.name = 'DatasetMismatch';
  }
}

/** The failure status a C-STORE gets for an error while storing it. */
export function storeFailureStatus(err: unknown): number {
  if (err instanceof DatasetMismatch) return STORE_STATUS.datasetMismatch;
  if (err instanceof ArteriaError && err.code === 'DEIDENTIFICATION_REFUSED') return STORE_STATUS.refusedByPolicy;
  if (err instanceof ArteriaError && err.code === 'INVALID_DICOM') return STORE_STATUS.cannotUnderstand;
  return STORE_STATUS.outOfResources;
}

/** Error Comment (0000,0902) for a failure: the code and the start of the message (LO: 64 characters, no backslash). */
export function storeErrorComment(err: unknown): string {
  if (err instanceof BurnedInRefusal) return err.brief;
  const text = err instanceof ArteriaError ? `${err.code}: ${err.message}` : 'OUT_OF_RESOURCES: the gateway could not store the object';
  return text.replace(/[\\\r\n]/g, ' ').slice(0, 64);
}
