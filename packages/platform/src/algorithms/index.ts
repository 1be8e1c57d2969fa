export { AlgorithmRegistry, type RegisteredAlgorithm, type RegistryLoadOptions, type ResolveOptions } from './registry.js';
export {
  ArtifactSignature,
  ArtifactTrustOptions,
  loadArtifactTrust,
  SIGNATURE_FILE,
  SIGNATURE_FORMAT,
  publicKeyId,
  readPrivateKey,
  readPublicKey,
  signArtifact,
  verifyArtifactSignature,
  parseArtifactSignature,
  type ArtifactTrust,
  type SignedStatement,
} from './artifact-signature.js';
export { artifactDigest, digestOfFiles, type ArtifactDigest } from './digest.js';
export { AlgorithmRunner, type AlgorithmRunnerOptions, type RunOptions, type RunResult, type RunnerStats, type StreamSource } from './sandbox.js';
export { inputContractProblem } from './input-contract.js';
export { compileOutputCheck, type OutputCheck } from './output-validator.js';
export { readArchive, writeArchive, assertSafePath, type ArchiveEntry } from './archive.js';
export { ArtifactStore, DEFAULT_STORE_PREFIX } from './artifact-store.js';
export { RELEASE_FORMAT, RELEASE_STAGES, ReleaseRecord, canMoveStage, parseReleaseRecord, verifyReleaseRecord, withStage, type ReleaseStage } from './release-record.js';
export { syncReleasedAlgorithms, assertStoreDigests, type SyncOptions, type SyncedVersion } from './release-sync.js';
export { SHADOW_FORMAT, ShadowPlan, ShadowRecord, inShadowShare, shadowReport, formatShadowReport, type ShadowOutcome, type ShadowReport } from './shadow.js';
export { CanaryWithdrawal, WITHDRAWAL_FORMAT, judgeCanary, type CanaryBounds, type CanaryVerdict, type SideStats } from './canary-judge.js';
