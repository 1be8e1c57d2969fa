import dicomParser from 'dicom-parser';
import { DEFAULT_MAX_INFLATED_BYTES, boundedInflater, parseDataSet, parserReason } from '@arteria/dicom';
import { ArteriaError } from '@arteria/protocol';

/**
 * Deepest sequence nesting de-identification reads, as the DICOM port's completeness check:
 * real objects nest a few levels; dcmjs slows quadratically with depth (1,000 levels: seconds).
 */
export const MAX_SEQUENCE_DEPTH = 32;

/**
 * Checks with dicom-parser (bounded inflation, no copy of the values) that dcmjs may read the
 * object: a deflated body inflates within the limit (INPUT_TOO_LARGE) and the data set parses
 * with sequences nested at most MAX_SEQUENCE_DEPTH deep (INVALID_DICOM). dcmjs itself
 * inflates without a bound and recurses without one.
 */
export function assertReadableForDeidentification(part10: Uint8Array): void {
  let dataSet: dicomParser.DataSet;
  try {
    dataSet = parseDataSet(part10, { inflater: boundedInflater(DEFAULT_MAX_INFLATED_BYTES) });
  } catch (err) {
    if (err instanceof ArteriaError) throw err;
    throw new ArteriaError('INVALID_DICOM', `cannot parse the DICOM object for de-identification: ${parserReason(err)}`, { cause: err });
  }
  const pending: { set: dicomParser.DataSet; depth: number }[] = [{ set: dataSet, depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const element of Object.values(next.set.elements)) {
      for (const item of element.items ?? []) {
        if (item.dataSet === undefined) continue;
        if (next.depth + 1 > MAX_SEQUENCE_DEPTH) {
          throw new ArteriaError('INVALID_DICOM', `sequences are nested more than ${MAX_SEQUENCE_DEPTH} deep; de-identification reads at most ${MAX_SEQUENCE_DEPTH}`);
        }
        pending.push({ set: item.dataSet, depth: next.depth + 1 });
      }
    }
  }
}
