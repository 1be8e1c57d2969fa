// The subset of dcmjs 0.51 de-identification uses (the package ships no types).
declare module 'dcmjs' {
  /** One element of a data set keyed by tag: VR and values (a sequence holds data sets). */
  export interface DicomElement {
    vr: string;
    Value?: unknown[];
    _rawValue?: unknown;
  }
  /** A data set keyed by tag ("00100010", upper-case hex). */
  export type DenaturalizedDataset = Record<string, DicomElement>;
  export type NaturalizedDataset = Record<string, unknown>;

  class DicomDict {
    constructor(meta: DenaturalizedDataset);
    meta: DenaturalizedDataset;
    dict: DenaturalizedDataset;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }

  interface DicomMessageStatic {
    readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string; includeUntilTagValue?: boolean }): DicomDict;
  }

  interface DicomMetaDictionaryStatic {
    denaturalizeDataset(dataset: NaturalizedDataset): DenaturalizedDataset;
    naturalizeDataset(dataset: DenaturalizedDataset): NaturalizedDataset;
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
