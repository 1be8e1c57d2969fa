export { loadAlgorithmPackage, type AlgorithmPackage } from './package.js';
export { initAlgorithm, starterModel, type InitOptions, type InitResult } from './scaffold.js';
export { testAlgorithm, formatReport, type TestOptions, type TestReport, type CheckResult, type CheckStatus } from './tester.js';
export { evaluateAlgorithm, formatEvalReport, type EvalOptions, type EvalReport, type Scorer } from './evaluate.js';
export { GoldenCase, GoldenFile, EvalSet, CaseInput, GOLDEN_FILE, EVAL_FILE, EVAL_SCORER, firstDifference, inputBytes } from './cases.js';
export { packAlgorithm, openArtifact, ArtifactDescriptor, ARTIFACT_FILE, SBOM_FILE, type PackOptions, type PackedArtifact, type OpenedArtifact } from './artifact.js';
export { readArchive, writeArchive, type ArchiveEntry } from '@arteria/worker';
export {
  generateSigningKey,
  signArtifactFile,
  verifyArtifactFile,
  installArtifact,
  readPublicKeys,
  readSignatureFile,
  signatureFileFor,
  type KeyPairFiles,
  type VerifiedArtifact,
  type InstallOptions,
} from './signing.js';
export type { Runtime } from './templates.js';
export { publishArtifact, moveStage, formatReleases, type PublishOptions, type PublishResult, type StageOptions } from './release.js';
