export { deidentifyFile } from './deidentify-file.js';
export { deidentify, type DeidentifiedRun, type DeidentifiedUids, type OriginalIdentity } from './deidentify.js';
export { DeidentificationKey } from './key.js';
export { DeidentificationProfile, PrivateTagAllowance, MaskRegion, type DeidentificationProfileInput } from './profile.js';
export { ReidentificationStore, type ReidentificationRecord } from './reid-store.js';
export { BurnedInRefusal, burnedInRefusal, mayHaveBurnedInAnnotation, type BurnedInFacts } from './burned-in.js';
