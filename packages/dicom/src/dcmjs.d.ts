// The subset of dcmjs 0.51 Arteria uses (the package ships no types).
declare module 'dcmjs' {
  /** A data set keyed by attribute keyword (PatientName, Rows, ...). */
  type NaturalizedDataset = Record<string, unknown>;
  /** A data set keyed by tag ("00100010") with { vr, Value } entries. */
  type DenaturalizedDataset = Record<string, { vr: string; Value: unknown[] }>;

  class DicomDict {
    constructor(meta: DenaturalizedDataset);
    meta: DenaturalizedDataset;
    dict: DenaturalizedDataset;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }

  interface DicomMetaDictionaryStatic {
    denaturalizeDataset(dataset: NaturalizedDataset): DenaturalizedDataset;
  }

  interface DicomMessageStatic {
    readFile(buffer: ArrayBuffer): DicomDict;
  }

  const dcmjs: {
    data: {
      DicomDict: typeof DicomDict;
      DicomMessage: DicomMessageStatic;
      DicomMetaDictionary: DicomMetaDictionaryStatic;
    };
  };
  export default dcmjs;
}
