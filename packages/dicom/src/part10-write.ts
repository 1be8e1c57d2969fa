import dcmjs from 'dcmjs';

/** What the file meta information (group 0002) of a Part 10 file says. */
export interface Part10Meta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The writing program's implementation class UID and version name. */
  implementationClassUid: string;
  implementationVersionName: string;
}

/**
 * A Part 10 file: preamble, file meta information and `dataset` (keyed by attribute
 * keyword, as dcmjs names them). An empty data set gives the header alone, for a writer
 * that streams the data set's bytes after it.
 */
export function encodePart10(meta: Part10Meta, dataset: Record<string, unknown>): Buffer {
  const dict = new dcmjs.data.DicomDict(
    dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: meta.sopClassUid,
      MediaStorageSOPInstanceUID: meta.sopInstanceUid,
      TransferSyntaxUID: meta.transferSyntaxUid,
      ImplementationClassUID: meta.implementationClassUid,
      ImplementationVersionName: meta.implementationVersionName,
    }),
  );
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}
