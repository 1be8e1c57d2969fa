import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { parseClusterConfig } from '@arteria/platform';

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));

interface Doc {
  file: string;
  body: Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string } };
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(p)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(p);
  }
  return out.sort();
}

async function loadDocs(): Promise<Doc[]> {
  const docs: Doc[] = [];
  for (const file of await yamlFiles(DEPLOY)) {
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? ''}`);
      docs.push({ file: path.relative(DEPLOY, file), body: doc.toJS() as Doc['body'] });
    }
  }
  return docs;
}

/** Built-in kinds, validated by kubernetes-models' schemas. */
const BUILT_IN: Record<string, (body: Record<string, unknown>) => { validate(): void }> = {
  'v1/Namespace': (b) => new Namespace(b),
  'v1/ServiceAccount': (b) => new ServiceAccount(b),
  'v1/ConfigMap': (b) => new ConfigMap(b),
  'v1/Secret': (b) => new Secret(b),
  'v1/Service': (b) => new Service(b),
  'apps/v1/Deployment': (b) => new Deployment(b),
  'apps/v1/StatefulSet': (b) => new StatefulSet(b),
  'policy/v1/PodDisruptionBudget': (b) => new PodDisruptionBudget(b),
};

// Custom resources kubernetes-models lacks: the fields Arteria uses, strictly (a typo fails).
const meta = z.strictObject({ name: z.string().min(1), namespace: z.string().optional(), labels: z.record(z.string(), z.string()).optional(), annotations: z.record(z.string(), z.string()).optional() });
const requirement = z.strictObject({ key: z.string(), operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']), values: z.array(z.string()).optional() });
const taint = z.strictObject({ key: z.string(), value: z.string().optional(), effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']) });
const CUSTOM: Record<string, z.ZodType> = {
  'keda.sh/v1alpha1/ScaledObject': z.strictObject({
    apiVersion: z.literal('keda.sh/v1alpha1'),
    kind: z.literal('ScaledObject'),
    metadata: meta,
    spec: z.strictObject({
      scaleTargetRef: z.strictObject({ apiVersion: z.string().optional(), kind: z.string().optional(), name: z.string() }),
      minReplicaCount: z.number().int().min(0).optional(),
      maxReplicaCount: z.number().int().min(1).optional(),
      pollingInterval: z.number().int().positive().optional(),
      cooldownPeriod: z.number().int().positive().optional(),
      advanced: z.strictObject({ horizontalPodAutoscalerConfig: z.strictObject({ behavior: z.record(z.string(), z.unknown()) }).optional() }).optional(),
      triggers: z.array(z.strictObject({ type: z.string(), metadata: z.record(z.string(), z.string()) })).min(1),
    }),
  }),
  'karpenter.sh/v1/NodePool': z.strictObject({
    apiVersion: z.literal('karpenter.sh/v1'),
    kind: z.literal('NodePool'),
    metadata: meta,
    spec: z.strictObject({
      template: z.strictObject({
        metadata: z.strictObject({ labels: z.record(z.string(), z.string()).optional() }).optional(),
        spec: z.strictObject({
          nodeClassRef: z.strictObject({ group: z.string(), kind: z.string(), name: z.string() }),
          requirements: z.array(requirement),
          taints: z.array(taint).optional(),
          expireAfter: z.string().regex(/^(\d+(s|m|h))+$|^Never$/).optional(),
        }),
      }),
      limits: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
      disruption: z.strictObject({ consolidationPolicy: z.enum(['WhenEmpty', 'WhenEmptyOrUnderutilized']), consolidateAfter: z.string().regex(/^(\d+(s|m|h))+$|^Never$/) }).optional(),
    }),
  }),
  'karpenter.k8s.aws/v1/EC2NodeClass': z.strictObject({
    apiVersion: z.literal('karpenter.k8s.aws/v1'),
    kind: z.literal('EC2NodeClass'),
    metadata: meta,
    spec: z.strictObject({
      amiSelectorTerms: z.array(z.strictObject({ alias: z.string().optional(), id: z.string().optional() })).min(1),
      role: z.string(),
      subnetSelectorTerms: z.array(z.strictObject({ tags: z.record(z.string(), z.string()) })).min(1),
      securityGroupSelectorTerms: z.array(z.strictObject({ tags: z.record(z.string(), z.string()) })).min(1),
      blockDeviceMappings: z.array(z.strictObject({ deviceName: z.string(), ebs: z.strictObject({ volumeSize: z.string(), volumeType: z.string(), encrypted: z.boolean() }) })).optional(),
    }),
  }),
  'argoproj.io/v1alpha1/Application': z.strictObject({
    apiVersion: z.literal('argoproj.io/v1alpha1'),
    kind: z.literal('Application'),
    metadata: meta,
    spec: z.strictObject({
      project: z.string(),
      source: z.strictObject({ repoURL: z.string().url(), targetRevision: z.string(), path: z.string() }),
      destination: z.strictObject({ server: z.string().url(), namespace: z.string() }),
      syncPolicy: z.strictObject({ automated: z.strictObject({ prune: z.boolean(), selfHeal: z.boolean() }).optional(), syncOptions: z.array(z.string()).optional() }).optional(),
    }),
  }),
  'kustomize.config.k8s.io/v1beta1/Kustomization': z.strictObject({
    apiVersion: z.string(),
    kind: z.literal('Kustomization'),
    namespace: z.string().optional(),
    labels: z.array(z.strictObject({ pairs: z.record(z.string(), z.string()) })).optional(),
    resources: z.array(z.string()).optional(),
    components: z.array(z.string()).optional(),
    patches: z.array(z.strictObject({ path: z.string() })).optional(),
    images: z.array(z.strictObject({ name: z.string(), newName: z.string().optional(), newTag: z.string().optional() })).optional(),
  }),
  'kustomize.config.k8s.io/v1alpha1/Component': z.strictObject({ apiVersion: z.string(), kind: z.literal('Component'), resources: z.array(z.string()) }),
};

const Workflow = z.strictObject({
  name: z.string(),
  on: z.record(z.string(), z.unknown()),
  permissions: z.record(z.string(), z.string()).optional(),
  jobs: z.record(
    z.string(),
    z.strictObject({
      'runs-on': z.string(),
      if: z.string().optional(),
      needs: z.union([z.string(), z.array(z.string())]).optional(),
      steps: z.array(z.strictObject({ name: z.string().optional(), uses: z.string().optional(), run: z.string().optional(), with: z.record(z.string(), z.unknown()).optional() })).min(1),
    }),
  ),
});

type PodSpec = NonNullable<NonNullable<Deployment['spec']>['template']['spec']>;

describe('deployment artifacts', async () => {
  const docs = await loadDocs();
  const byKind = (kind: string): Doc[] => docs.filter((d) => d.body.kind === kind);
  const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
  const podSpec = (d: Doc): PodSpec => (d.body as unknown as Deployment).spec?.template.spec as PodSpec;
  const configs = byKind('ConfigMap').map((d) => ({ file: d.file, config: parseClusterConfig(parseAllDocuments(String((d.body.data as Record<string, string>)['arteria.yaml']))[0]?.toJS()) }));

  it('every document validates: built-in kinds by their schemas, custom resources strictly', () => {
    expect(docs.length).toBeGreaterThan(20);
    for (const { file, body } of docs) {
      if (file.startsWith('ci/')) {
        expect(() => Workflow.parse(body), file).not.toThrow();
        continue;
      }
      const key = `${body.apiVersion ?? ''}/${body.kind ?? ''}`;
      const model = BUILT_IN[key];
      const custom = CUSTOM[key];
      expect(model !== undefined || custom !== undefined, `${file}: unknown kind ${key}`).toBe(true);
      if (model) expect(() => model(body).validate(), file).not.toThrow();
      if (custom) {
        const parsed = custom.safeParse(body);
        expect(parsed.success, `${file}: ${parsed.error?.message ?? ''}`).toBe(true);
      }
    }
  });

  it('every embedded Arteria configuration passes the configuration schema', () => {
    expect(configs.length).toBeGreaterThanOrEqual(3);
    for (const { config } of configs) expect(config.http.host).toBe('0.0.0.0');
  });

  it('kustomizations name files and resources that exist', () => {
    const names = new Set(docs.map((d) => `${d.body.kind ?? ''}/${d.body.metadata?.name ?? ''}`));
    for (const k of docs.filter((d) => d.body.kind === 'Kustomization' || d.body.kind === 'Component')) {
      const dir = path.join(DEPLOY, path.dirname(k.file));
      const body = k.body as { resources?: string[]; components?: string[]; patches?: { path: string }[] };
      for (const ref of [...(body.resources ?? []), ...(body.components ?? []), ...(body.patches ?? []).map((p) => p.path)]) {
        expect(existsSync(path.join(dir, ref)), `${k.file}: ${ref}`).toBe(true);
      }
      for (const patch of body.patches ?? []) {
        const target = docs.find((d) => d.file === path.relative(DEPLOY, path.join(dir, patch.path)));
        expect(names.has(`${target?.body.kind ?? ''}/${target?.body.metadata?.name ?? ''}`), `${k.file}: patch ${patch.path} targets nothing`).toBe(true);
      }
    }
  });

  it('every role has readiness and liveness probes on its HTTP port and runs as non-root', () => {
    expect(workloads.map((w) => w.body.metadata?.name).sort()).toEqual(['arteria-autoscaler', 'arteria-dashboard', 'arteria-ingest', 'arteria-worker-cpu', 'arteria-worker-gpu']);
    for (const w of workloads) {
      const spec = podSpec(w);
      expect(spec.securityContext?.runAsNonRoot, w.file).toBe(true);
      for (const c of spec.containers) {
        expect(c.ports?.some((p) => p.name === 'http' && p.containerPort === 18832), w.file).toBe(true);
        expect(c.readinessProbe?.httpGet?.path, w.file).toBe('/readyz');
        expect(c.livenessProbe?.httpGet?.path, w.file).toBe('/healthz');
        expect(c.securityContext?.allowPrivilegeEscalation, w.file).toBe(false);
        expect(c.args?.[0], w.file).toMatch(/^(ingest|worker|autoscaler|dashboard)$/);
      }
    }
  });

  it('workers get more termination grace than the drain takes, under every configuration', () => {
    const longestDrainMs = Math.max(...configs.map((c) => c.config.worker.drainTimeoutMs));
    for (const w of workloads.filter((d) => d.body.metadata?.name?.startsWith('arteria-worker'))) {
      const grace = podSpec(w).terminationGracePeriodSeconds ?? 30;
      expect(grace * 1000, w.file).toBeGreaterThanOrEqual(longestDrainMs + 10_000);
    }
  });

  it('KEDA scales existing worker Deployments through the autoscaler Service', () => {
    const autoscaler = byKind('Service').find((s) => s.body.metadata?.name === 'arteria-autoscaler')?.body as unknown as Service;
    const grpcPort = autoscaler.spec?.ports?.find((p) => p.name === 'grpc')?.port;
    const objects = byKind('ScaledObject');
    expect(objects.length).toBe(2);
    for (const so of objects) {
      const spec = so.body.spec as { scaleTargetRef: { name: string }; triggers: { type: string; metadata: Record<string, string> }[] };
      expect(workloads.some((w) => w.body.kind === 'Deployment' && w.body.metadata?.name === spec.scaleTargetRef.name), so.file).toBe(true);
      expect(spec.triggers[0]?.type).toBe('external');
      expect(spec.triggers[0]?.metadata.scalerAddress).toBe(`arteria-autoscaler.arteria.svc:${grpcPort ?? 0}`);
    }
    // The autoscaler process listens where the Service sends KEDA, reachable from outside the pod.
    const container = podSpec(workloads.find((w) => w.body.metadata?.name === 'arteria-autoscaler') as Doc).containers[0];
    const containerPort = container?.ports?.find((p) => p.name === 'grpc')?.containerPort;
    for (const { file, config } of configs) {
      expect(config.autoscale.target, file).toBe('keda');
      expect(config.autoscale.grpcHost, file).toBe('0.0.0.0');
      expect(config.autoscale.grpcPort, file).toBe(containerPort);
    }
  });

  it('GPU workers land on the Karpenter GPU NodePool, tolerating its taint', () => {
    const gpu = podSpec(workloads.find((w) => w.body.metadata?.name === 'arteria-worker-gpu') as Doc);
    const pool = byKind('NodePool')[0]?.body as { metadata: { name: string }; spec: { template: { spec: { taints: { key: string }[] } } } };
    expect(gpu.nodeSelector?.['karpenter.sh/nodepool']).toBe(pool.metadata.name);
    expect(gpu.tolerations?.map((t) => t.key)).toContain(pool.spec.template.spec.taints[0]?.key);
    expect(gpu.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe(1);
  });

  it('container build is multi-stage and ends as a non-root user', async () => {
    const dockerfile = await readFile(path.join(DEPLOY, 'container/Dockerfile'), 'utf8');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages.length).toBeGreaterThanOrEqual(3);
    for (const stage of stages.filter((s) => /^\S+ AS runtime/.test(s))) {
      const users = [...stage.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
      expect(users.at(-1)).toMatch(/^[1-9]\d*(:\d+)?$/);
    }
  });
});
