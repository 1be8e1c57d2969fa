import type { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { ArteriaError } from '@arteria/protocol';
import type { Replicas, ScaleTarget } from '@arteria/ports';

export interface KubernetesTargetOptions {
  namespace: string;
  /** The workers' Deployment. */
  deployment: string;
  /** Defaults to the in-cluster service account, else ~/.kube/config. */
  kubeConfig?: KubeConfig;
}

interface Client {
  api: AppsV1Api;
  /** Request options that make a patch a JSON merge patch. */
  mergePatch: ReturnType<typeof import('@kubernetes/client-node').setHeaderOptions>;
}

/**
 * A Deployment's scale subresource (`/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`).
 * Only `spec.replicas` is written, with a JSON merge patch, so nothing else of the
 * Deployment is touched. Scale-in relies on the pods' termination grace period: an
 * Arteria worker stops leasing on SIGTERM and finishes its task.
 */
export class KubernetesDeploymentTarget implements ScaleTarget {
  readonly kind = 'kubernetes';
  readonly #kubeConfig: KubeConfig | undefined;
  readonly #namespace: string;
  readonly #deployment: string;
  #client: Promise<Client> | undefined;

  constructor(options: KubernetesTargetOptions) {
    this.#kubeConfig = options.kubeConfig;
    this.#namespace = options.namespace;
    this.#deployment = options.deployment;
  }

  /**
   * A target whose client is loaded now: a kubeconfig that cannot be read fails here, at
   * start, rather than at the first scaling decision.
   */
  static async open(options: KubernetesTargetOptions): Promise<KubernetesDeploymentTarget> {
    const target = new KubernetesDeploymentTarget(options);
    await target.#connect();
    return target;
  }

  /**
   * The client library is loaded on first use: it is about 1,800 modules, and every process
   * that imports the platform (each CLI command, each role) would otherwise load it.
   */
  #connect(): Promise<Client> {
    this.#client ??= import('@kubernetes/client-node').then((k8s) => {
      let config = this.#kubeConfig;
      if (!config) {
        config = new k8s.KubeConfig();
        config.loadFromDefault();
      }
      return { api: config.makeApiClient(k8s.AppsV1Api), mergePatch: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch) };
    });
    return this.#client;
  }

  async getReplicas(): Promise<Replicas> {
    try {
      const { api } = await this.#connect();
      const scale = await api.readNamespacedDeploymentScale({ name: this.#deployment, namespace: this.#namespace });
      return { desired: scale.spec?.replicas ?? 0, ready: scale.status?.replicas };
    } catch (err) {
      throw this.#error('read', err);
    }
  }

  async setReplicas(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 0) throw new ArteriaError('CONFIG_INVALID', `replicas must be a whole number >= 0, got ${count}`);
    try {
      const { api, mergePatch } = await this.#connect();
      await api.patchNamespacedDeploymentScale({ name: this.#deployment, namespace: this.#namespace, body: { spec: { replicas: count } } }, mergePatch);
    } catch (err) {
      throw this.#error('scale', err);
    }
  }

  #error(action: string, cause: unknown): ArteriaError {
    return new ArteriaError('SCALE_TARGET_UNAVAILABLE', `could not ${action} deployment ${this.#namespace}/${this.#deployment}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
