export { AlgorithmRegistry, type RegisteredAlgorithm } from './registry.js';
export { artifactDigest, type ArtifactDigest } from './digest.js';
export { AlgorithmRunner, type AlgorithmRunnerOptions, type RunOptions, type RunResult, type RunnerStats, type StreamSource } from './sandbox.js';
export { inputContractProblem } from './input-contract.js';
