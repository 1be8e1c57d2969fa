import path from 'node:path';
import { AlgorithmRegistry, ArtifactStore, assertStoreDigests, loadArtifactTrust, syncReleasedAlgorithms, verifyShadowPlan, type ShadowPlan, type SyncedVersion } from '@arteria/worker';
import { createS3Client, s3ObjectBucket } from '@arteria/engine-s3';
import type { ClusterConfig } from './cluster-config.js';

export interface RoleAlgorithms {
  registry: AlgorithmRegistry;
  /** Versions that came from the artifact store (empty when algorithms.fromStore is off). */
  fromStore: SyncedVersion[];
  /** Shadow plans whose version this (worker) process loaded; ingest loads none. */
  shadows: ShadowPlan[];
  /** What the store held when it was read (records and plans); a poll that reads the same changes nothing. */
  fingerprint: string;
}

/** The store's state as far as a role loads it: every release record, and the shadow plans for a worker. */
export async function storeFingerprint(store: ArtifactStore, role: 'worker' | 'ingest'): Promise<string> {
  const [records, plans] = await Promise.all([store.listRecords(), role === 'worker' ? store.listShadowPlans() : Promise.resolve([])]);
  return JSON.stringify({ records, plans });
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
  return { store: new ArtifactStore(s3ObjectBucket(client, c.algorithms.storeBucket === '' ? c.s3.bucket : c.algorithms.storeBucket), c.algorithms.storePrefix), close: () => client.destroy() };
}

/**
 * What a worker or ingest process runs: the folders it was given, plus (with
 * algorithms.fromStore) the store's versions in the configured stages, fetched by digest
 * into its cache and checked against their signatures and release records. A worker also
 * loads each shadow plan's version; ingest never does, so no request resolves to one.
 */
export async function loadRoleAlgorithms(c: Readonly<ClusterConfig>, role: 'worker' | 'ingest', dirs: readonly string[], options: { prune?: boolean } = {}): Promise<RoleAlgorithms> {
  const trust = await loadArtifactTrust({ publicKeyFiles: c.algorithms.trustedKeyFiles, requireSignatures: c.algorithms.requireSignatures });
  let fromStore: SyncedVersion[] = [];
  let shadows: ShadowPlan[] = [];
  let fingerprint = '';
  if (c.algorithms.fromStore) {
    const { store, close } = artifactStoreClient(c);
    try {
      // Read first: a change made while this load runs shows as a different fingerprint at the next poll.
      fingerprint = await storeFingerprint(store, role);
      if (role === 'worker') shadows = (await store.listShadowPlans()).filter((p) => p.percent > 0);
      // Checked like a stage change: a plan edited without the key (another version, a
      // larger share) or unsigned where signatures are required stops the process.
      for (const plan of shadows) verifyShadowPlan(plan, trust?.publicKeys ?? [], trust?.requireSignatures === true);
      // One folder per process: roles sharing a data folder never prune each other's versions.
      const base = c.algorithms.cacheDir === '' ? path.join(path.resolve(c.dataDir), 'algorithm-cache') : path.resolve(c.algorithms.cacheDir);
      const cacheDir = path.join(base, `${role}-${c.instanceId}`);
      fromStore = await syncReleasedAlgorithms({ store, cacheDir, stages: c.algorithms.storeStages, trust, alsoVersions: shadows, ...(options.prune === undefined ? {} : { prune: options.prune }) });
    } finally {
      close();
    }
  }
  const registry = await AlgorithmRegistry.load([...dirs.map((d) => path.resolve(d)), ...fromStore.map((s) => s.dir)], { trust });
  assertStoreDigests(registry, fromStore);
  // A plan whose version is not published (or retired) runs nothing.
  const loaded = new Set(registry.list().map((a) => `${a.manifest.name}@${a.manifest.version}`));
  return { registry, fromStore, shadows: shadows.filter((p) => loaded.has(`${p.name}@${p.version}`)), fingerprint };
}
