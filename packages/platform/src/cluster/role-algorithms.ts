import path from 'node:path';
import { AlgorithmRegistry, ArtifactStore, assertStoreDigests, loadArtifactTrust, syncReleasedAlgorithms, type ShadowPlan, type SyncedVersion } from '@arteria/worker';
import { createS3Client } from '@arteria/engine-s3';
import type { ClusterConfig } from './cluster-config.js';

export interface RoleAlgorithms {
  registry: AlgorithmRegistry;
  /** Versions that came from the artifact store (empty when algorithms.fromStore is off). */
  fromStore: SyncedVersion[];
  /** Shadow plans whose version this (worker) process loaded; ingest loads none. */
  shadows: ShadowPlan[];
}

/** The artifact store a deployment's configuration names (algorithms.store*, on the s3 endpoint). */
export function artifactStoreClient(c: Readonly<ClusterConfig>): { store: ArtifactStore; close: () => void } {
  const client = createS3Client({
    ...(c.s3.endpoint === '' ? {} : { endpoint: c.s3.endpoint }),
    region: c.s3.region,
    accessKeyId: c.s3.accessKeyId,
    secretAccessKey: c.s3.secretAccessKey,
    forcePathStyle: c.s3.forcePathStyle,
  });
  return { store: new ArtifactStore(client, c.algorithms.storeBucket === '' ? c.s3.bucket : c.algorithms.storeBucket, c.algorithms.storePrefix), close: () => client.destroy() };
}

/**
 * What a worker or ingest process runs: the folders it was given, plus (with
 * algorithms.fromStore) the store's versions in the configured stages, fetched by digest
 * into its cache and checked against their signatures and release records. A worker also
 * loads each shadow plan's version; ingest never does, so no request resolves to one.
 */
export async function loadRoleAlgorithms(c: Readonly<ClusterConfig>, role: 'worker' | 'ingest', dirs: readonly string[]): Promise<RoleAlgorithms> {
  const trust = await loadArtifactTrust({ publicKeyFiles: c.algorithms.trustedKeyFiles, requireSignatures: c.algorithms.requireSignatures });
  let fromStore: SyncedVersion[] = [];
  let shadows: ShadowPlan[] = [];
  if (c.algorithms.fromStore) {
    const { store, close } = artifactStoreClient(c);
    try {
      if (role === 'worker') shadows = (await store.listShadowPlans()).filter((p) => p.percent > 0);
      // One folder per process: roles sharing a data folder never prune each other's versions.
      const base = c.algorithms.cacheDir === '' ? path.join(path.resolve(c.dataDir), 'algorithm-cache') : path.resolve(c.algorithms.cacheDir);
      const cacheDir = path.join(base, `${role}-${c.instanceId}`);
      fromStore = await syncReleasedAlgorithms({ store, cacheDir, stages: c.algorithms.storeStages, trust, alsoVersions: shadows });
    } finally {
      close();
    }
  }
  const registry = await AlgorithmRegistry.load([...dirs.map((d) => path.resolve(d)), ...fromStore.map((s) => s.dir)], { trust });
  assertStoreDigests(registry, fromStore);
  // A plan whose version is not published (or retired) runs nothing.
  const loaded = new Set(registry.list().map((a) => `${a.manifest.name}@${a.manifest.version}`));
  return { registry, fromStore, shadows: shadows.filter((p) => loaded.has(`${p.name}@${p.version}`)) };
}
