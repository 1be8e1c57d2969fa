export type { ScaleTarget, Replicas } from './scale-target.js';
export { WorkerPoolTarget } from './worker-pool-target.js';
export { KubernetesDeploymentTarget, type KubernetesTargetOptions } from './kubernetes-target.js';
export { KedaExternalScaler, KEDA_SCALER_DEFAULTS, type KedaScalerOptions } from './keda-scaler.js';
export { Autoscaler, type AutoscalerDeps, type AutoscalerSettings, type AutoscalerDecision, type AutoscalerState } from './autoscaler.js';
export { serviceTotals, type SignalSource, type PlatformSample } from './signal-source.js';
export { ledgerSignalSource, type LedgerSignalDeps } from './ledger-signal-source.js';
export { embeddedSignalSource, startEmbeddedAutoscaler, type EmbeddedParts } from './embedded.js';
export { AutoscaleOptions, type AutoscaleInput } from './options.js';
