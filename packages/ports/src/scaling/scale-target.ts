/**
 * The `ScaleTarget` port: where a worker count is applied. Adapters: the embedded worker
 * pool, a Kubernetes Deployment's scale subresource, and a KEDA external scaler that
 * publishes the count for KEDA to apply. Every adapter drains on scale-in (the pool
 * drains its workers; Kubernetes sends SIGTERM and waits the grace period, during which
 * an Arteria worker finishes its task and stops leasing).
 */
export interface Replicas {
  /** The count last asked for. */
  desired: number;
  /** Workers taking work now, where the target knows it. */
  ready: number | undefined;
}

export interface ScaleTarget {
  readonly kind: string;
  getReplicas(signal?: AbortSignal): Promise<Replicas>;
  setReplicas(count: number, signal?: AbortSignal): Promise<void>;
}
