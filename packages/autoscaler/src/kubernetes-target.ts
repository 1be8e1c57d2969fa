import { AppsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { ArteriaError } from '@arteria/protocol';
import type { Replicas, ScaleTarget } from '@arteria/ports';

export interface KubernetesTargetOptions {
  namespace: string;
  /** The workers' Deployment. */
  deployment: string;
  /** Defaults to the in-cluster service account, else ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

/**
 * A Deployment's scale subresource (`/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`).
 * Only `spec.replicas` is written, with a JSON merge patch, so nothing else of the
 * Deployment is touched. Scale-in relies on the pods' termination grace period: an
 * Arteria worker stops leasing on SIGTERM and finishes its task.
 */
export class KubernetesDeploymentTarget implements ScaleTarget {
  readonly kind = 'kubernetes';
  readonly #api: AppsV1Api;
  readonly #namespace: string;
  readonly #deployment: string;

  constructor(options: KubernetesTargetOptions) {
    let config = options.kubeConfig;
    if (!config) {
      config = new KubeConfig();
      config.loadFromDefault();
    }
    this.#api = config.makeApiClient(AppsV1Api);
    this.#namespace = options.namespace;
    this.#deployment = options.deployment;
  }

  async getReplicas(): Promise<Replicas> {
    try {
      const scale = await this.#api.readNamespacedDeploymentScale({ name: this.#deployment, namespace: this.#namespace });
      return { desired: scale.spec?.replicas ?? 0, ready: scale.status?.replicas };
    } catch (err) {
      throw this.#error('read', err);
    }
  }

  async setReplicas(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 0) throw new ArteriaError('CONFIG_INVALID', `replicas must be a whole number >= 0, got ${count}`);
    try {
      await this.#api.patchNamespacedDeploymentScale(
        { name: this.#deployment, namespace: this.#namespace, body: { spec: { replicas: count } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      throw this.#error('scale', err);
    }
  }

  #error(action: string, cause: unknown): ArteriaError {
    return new ArteriaError('SCALE_TARGET_UNAVAILABLE', `could not ${action} deployment ${this.#namespace}/${this.#deployment}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
