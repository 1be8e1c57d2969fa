import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { EntitlementPolicy } from '@arteria/ingest';
import { parseClusterConfig, type ClusterConfig } from '@arteria/platform';
import { CONFIG_KEYS, getPath, loadConfig } from '@arteria/cli';

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));

interface Doc {
  file: string;
  body: Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } };
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
  'networking.k8s.io/v1/NetworkPolicy': (b) => new NetworkPolicy(b),
};

/** A kustomization's patch: a file, and for a JSON patch the resources it applies to. */
const patchRef = z.strictObject({ path: z.string(), target: z.strictObject({ group: z.string().optional(), version: z.string().optional(), kind: z.string().optional(), name: z.string().optional() }).optional() });
/** A JSON 6902 patch file (a YAML list of operations), applied by a kustomization to its target. */
const JsonPatch = z.array(z.strictObject({ op: z.enum(['add', 'replace', 'remove']), path: z.string().regex(/^\//), value: z.unknown().optional() })).min(1);

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
    patches: z.array(patchRef).optional(),
    images: z.array(z.strictObject({ name: z.string(), newName: z.string().optional(), newTag: z.string().optional() })).optional(),
  }),
  'kustomize.config.k8s.io/v1alpha1/Component': z.strictObject({ apiVersion: z.string(), kind: z.literal('Component'), resources: z.array(z.string()).optional(), patches: z.array(patchRef).optional() }),
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
type Container = PodSpec['containers'][number];
type Body = Doc['body'];
type PatchRef = z.output<typeof patchRef>;
interface KustomizationBody {
  namespace?: string;
  resources?: string[];
  components?: string[];
  patches?: PatchRef[];
}

const isPlain = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const anchored = (pattern: string | undefined, value: string): boolean => pattern === undefined || new RegExp(`^(?:${pattern})$`).test(value);

/** kustomize's target selection: every given field matches, as an anchored regular expression. */
function selects(ref: PatchRef, body: Body): boolean {
  if (ref.target === undefined) throw new Error(`${ref.path}: a JSON patch needs a target`);
  const api = body.apiVersion ?? '';
  const slash = api.lastIndexOf('/');
  const t = ref.target;
  return anchored(t.group, slash < 0 ? '' : api.slice(0, slash)) && anchored(t.version, api.slice(slash + 1)) && anchored(t.kind, body.kind ?? '') && anchored(t.name, body.metadata?.name ?? '');
}

function applyOp(body: Body, op: z.output<typeof JsonPatch>[number]): void {
  const tokens = op.path.split('/').slice(1).map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = tokens.pop() ?? '';
  let node: unknown = body;
  for (const t of tokens) {
    node = Array.isArray(node) ? (node as unknown[])[Number(t)] : isPlain(node) ? node[t] : undefined;
    if (node === null || typeof node !== 'object') throw new Error(`${op.path}: ${t} does not exist`);
  }
  if (Array.isArray(node)) {
    const i = last === '-' ? node.length : Number(last);
    if (!(Number.isInteger(i) && i >= 0 && i <= node.length - (op.op === 'add' ? 0 : 1))) throw new Error(`${op.path}: no index ${last}`);
    node.splice(i, op.op === 'add' ? 0 : 1, ...(op.op === 'remove' ? [] : [structuredClone(op.value)]));
  } else if (isPlain(node)) {
    if (op.op !== 'add' && !(last in node)) throw new Error(`${op.path} does not exist`);
    if (op.op === 'remove') Reflect.deleteProperty(node, last);
    else node[last] = structuredClone(op.value);
  }
}

/** Strategic merge for the maps Arteria's patches touch; lists are replaced, not merged by key. */
function mergeInto(into: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = into[key];
    if (isPlain(value) && isPlain(current)) mergeInto(current, value);
    else into[key] = structuredClone(value);
  }
}

/**
 * What `kustomize build` makes of a folder, for the features deploy/k8s uses: resources
 * (files and folders), components in order (their resources, then their patches over
 * everything so far), then the folder's own patches (strategic merge by kind and name,
 * JSON 6902 by target) and namespace. Images are not rewritten. A kustomization can be
 * given in place of the folder's own, to render combinations no overlay uses.
 */
function renderer(docs: Doc[]): (dir: string, kustomization?: KustomizationBody) => Body[] {
  const bodiesIn = (file: string): Body[] => docs.filter((d) => d.file === path.relative(DEPLOY, file)).map((d) => structuredClone(d.body));
  const kustomizationIn = (dir: string): KustomizationBody => {
    const body = bodiesIn(path.join(dir, 'kustomization.yaml'))[0];
    if (body === undefined) throw new Error(`${dir}: no kustomization.yaml`);
    return body as KustomizationBody;
  };
  const resources = (dir: string, refs: string[] = []): Body[] => refs.flatMap((ref) => (statSync(path.join(dir, ref)).isDirectory() ? render(path.join(dir, ref)) : bodiesIn(path.join(dir, ref))));
  const patch = (out: Body[], dir: string, refs: PatchRef[] = []): void => {
    for (const ref of refs) {
      for (const p of bodiesIn(path.join(dir, ref.path))) {
        if (Array.isArray(p)) {
          const ops = JsonPatch.parse(p);
          for (const body of out.filter((b) => selects(ref, b))) for (const op of ops) applyOp(body, op);
          continue;
        }
        const body = out.find((b) => b.kind === p.kind && b.metadata?.name === p.metadata?.name);
        if (body === undefined) throw new Error(`${ref.path}: no ${p.kind ?? ''}/${p.metadata?.name ?? ''} to patch`);
        mergeInto(body, p);
      }
    }
  };
  function render(dir: string, k: KustomizationBody = kustomizationIn(dir)): Body[] {
    const out = resources(dir, k.resources);
    for (const ref of k.components ?? []) {
      const component = kustomizationIn(path.join(dir, ref));
      out.push(...resources(path.join(dir, ref), component.resources));
      patch(out, path.join(dir, ref), component.patches);
    }
    patch(out, dir, k.patches);
    if (k.namespace !== undefined) for (const b of out) if (b.kind !== 'Namespace') b.metadata = { ...b.metadata, namespace: k.namespace };
    return out;
  }
  return render;
}

/** The example Secrets' keys and values by Secret name; several examples of one Secret add up. */
function exampleSecrets(docs: Doc[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const { body } of docs.filter((d) => d.body.kind === 'Secret')) {
    const s = body as { metadata: { name: string }; stringData?: Record<string, string>; data?: Record<string, string> };
    const keys = out.get(s.metadata.name) ?? new Map<string, string>();
    for (const [k, v] of Object.entries(s.stringData ?? {})) keys.set(k, v);
    for (const [k, v] of Object.entries(s.data ?? {})) keys.set(k, Buffer.from(v, 'base64').toString('utf8'));
    out.set(s.metadata.name, keys);
  }
  return out;
}

/** Settings naming a file the process reads: credentials (passwords, creds, keys, certificates) from Secrets, the entitlements from a ConfigMap. */
const ENTITLEMENTS_KEY = 'ingest.entitlementsFile';
const FILE_KEYS = CONFIG_KEYS.map((k) => k.path).filter((p) => /file$/i.test(p) && p !== ENTITLEMENTS_KEY);

/** The volume, and the key of its Secret or ConfigMap, that a file in a container comes from. */
function mountedFile(pod: PodSpec, c: Container, file: string) {
  const mount = (c.volumeMounts ?? []).filter((m) => file.startsWith(`${m.mountPath.replace(/\/$/, '')}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (mount === undefined) return undefined;
  const volume = pod.volumes?.find((v) => v.name === mount.name);
  const rel = file.slice(mount.mountPath.replace(/\/$/, '').length + 1);
  const items = (volume?.secret ?? volume?.configMap)?.items;
  return { mount, volume, key: items ? items.find((i) => i.path === rel)?.key : rel };
}

const usesNats = (c: Readonly<ClusterConfig>, role: string): boolean => c.queue.kind === 'nats' || c.ledger.kind === 'nats' || (role === 'ingest' && c.ingest.source === 'nats-stream');

/** How a role authenticates to NATS: `nats-password` or `nats-creds` (the components' names), or not at all. */
function natsCredentials(c: Readonly<ClusterConfig>): string | undefined {
  if (c.nats.credsFile !== '') return c.nats.user === '' && c.nats.passwordFile === '' ? 'nats-creds' : 'both';
  return c.nats.user !== '' && c.nats.passwordFile !== '' ? 'nats-password' : undefined;
}

describe('deployment artifacts', async () => {
  const docs = await loadDocs();
  const render = renderer(docs);
  const secrets = exampleSecrets(docs);
  const K8S = path.join(DEPLOY, 'k8s');
  const overlays = (await readdir(path.join(K8S, 'overlays'))).sort();
  const optionalComponents = (await readdir(path.join(K8S, 'components'))).filter((c) => c !== 'gpu-worker').sort();
  const tmp = await mkdtemp(path.join(tmpdir(), 'arteria-manifests-'));
  afterAll(() => rm(tmp, { recursive: true, force: true }));
  const byKind = (kind: string): Doc[] => docs.filter((d) => d.body.kind === kind);
  const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
  const podSpec = (d: Doc): PodSpec => (d.body as unknown as Deployment).spec?.template.spec as PodSpec;
  // Arteria configurations; other ConfigMaps (the entitlements) are checked where they are mounted.
  const configs = byKind('ConfigMap')
    .filter((d) => (d.body.data as Record<string, string> | undefined)?.['arteria.yaml'] !== undefined)
    .map((d) => ({ file: d.file, config: parseClusterConfig(parseAllDocuments(String((d.body.data as Record<string, string>)['arteria.yaml']))[0]?.toJS()) }));

  it('every document validates: built-in kinds by their schemas, custom resources strictly', () => {
    expect(docs.length).toBeGreaterThan(20);
    for (const { file, body } of docs) {
      if (Array.isArray(body)) {
        const parsed = JsonPatch.safeParse(body);
        expect(parsed.success, `${file}: ${parsed.error?.message ?? ''}`).toBe(true);
        continue;
      }
      if (file.startsWith('ci/')) {
        expect(() => Workflow.parse(body), file).not.toThrow();
        continue;
      }
      // Prometheus rule files and their unit tests: promtool validates them (monitoring.test.ts).
      if (file.startsWith('monitoring/')) continue;
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

  /**
   * Each role's effective configuration in a rendered set of manifests, as the process
   * would load it: its ConfigMap file (ARTERIA_CONFIG) under its environment, the Secrets
   * it reads taken from their examples. loadConfig rejects a variable that is no
   * configuration key. Checks on the way that every file a setting names (passwords,
   * creds, certificates) comes from a Secret mounted read-only, whole (a subPath mount
   * never sees the Secret change), and readable by the process.
   */
  async function roleConfigs(label: string, rendered: Body[]): Promise<{ where: string; role: string; config: Readonly<ClusterConfig> }[]> {
    const out = [];
    for (const w of rendered.filter((b) => b.kind === 'Deployment' || b.kind === 'StatefulSet')) {
      const name = w.metadata?.name ?? '';
      const model = BUILT_IN[`${w.apiVersion ?? ''}/${w.kind ?? ''}`];
      expect(() => model?.(w).validate(), `${label}: ${name}`).not.toThrow();
      const pod = (w as unknown as Deployment).spec?.template.spec as PodSpec;
      const volumes = (pod.volumes ?? []).map((v) => v.name);
      expect(new Set(volumes).size, `${label}: ${name}: volumes ${volumes.join(', ')}`).toBe(volumes.length);
      for (const c of pod.containers) {
        const where = `${label}: ${name}/${c.name}`;
        const mounts = (c.volumeMounts ?? []).map((m) => m.mountPath);
        expect(new Set(mounts).size, `${where}: mounts ${mounts.join(', ')}`).toBe(mounts.length);
        const names = (c.env ?? []).map((e) => e.name);
        expect(new Set(names).size, `${where}: env ${names.join(', ')}`).toBe(names.length);
        const env: Record<string, string> = {};
        for (const from of c.envFrom ?? []) {
          const keys = secrets.get(from.secretRef?.name ?? '');
          expect(keys, `${where}: envFrom needs an example Secret`).toBeDefined();
          for (const [k, v] of keys ?? []) env[`${from.prefix ?? ''}${k}`] = v;
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (e.value !== undefined) env[e.name] = e.value;
          else if (ref !== undefined) {
            const value = secrets.get(ref.name ?? '')?.get(ref.key);
            expect(value, `${where}: ${e.name}: example Secret ${ref.name ?? ''} has no key ${ref.key}`).toBeDefined();
            env[e.name] = value ?? '';
          } else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = `${name}-0`;
          else throw new Error(`${where}: ${e.name}: a value source this test does not know`);
        }
        const configFile = mountedFile(pod, c, env.ARTERIA_CONFIG ?? '');
        const configMap = rendered.find((b) => b.kind === 'ConfigMap' && b.metadata?.name === configFile?.volume?.configMap?.name);
        const text = (configMap?.data as Record<string, string> | undefined)?.[configFile?.key ?? ''];
        expect(text, `${where}: ARTERIA_CONFIG ${env.ARTERIA_CONFIG ?? ''} is no mounted ConfigMap key`).toBeDefined();
        const file = path.join(tmp, `${label}-${name}-${c.name}.yaml`);
        await writeFile(file, text ?? '');
        const { config } = await loadConfig({ argv: ['--config', file], env });
        for (const key of FILE_KEYS) {
          const named = getPath(config, key) as string;
          if (named === '') continue;
          const at = mountedFile(pod, c, named);
          const secret = at?.volume?.secret;
          expect(secret, `${where}: ${key} ${named} is not in a mounted Secret`).toBeDefined();
          expect(at?.mount.readOnly, `${where}: ${key}: mount read-only`).toBe(true);
          expect(at?.mount.subPath, `${where}: ${key}: subPath mount`).toBeUndefined();
          expect(secrets.get(secret?.secretName ?? '')?.has(at?.key ?? ''), `${where}: ${key}: example Secret ${secret?.secretName ?? ''} has no key ${at?.key ?? ''}`).toBe(true);
          // Root owns a Secret's files: the process reads them as others, or as the pod's fsGroup.
          const mode = secret?.defaultMode ?? 0o644;
          expect((mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && pod.securityContext?.fsGroup !== undefined), `${where}: ${key}: mode ${mode.toString(8)} unreadable`).toBe(true);
        }
        // The entitlements are no secret: a ConfigMap, mounted read-only and whole, that parses.
        const entitlements = config.ingest.entitlementsFile;
        if (entitlements !== '') {
          const at = mountedFile(pod, c, entitlements);
          const source = rendered.find((b) => b.kind === 'ConfigMap' && b.metadata?.name === at?.volume?.configMap?.name);
          const json = (source?.data as Record<string, string> | undefined)?.[at?.key ?? ''];
          expect(json, `${where}: ${ENTITLEMENTS_KEY} ${entitlements} is no mounted ConfigMap key`).toBeDefined();
          expect(at?.mount.readOnly, `${where}: ${ENTITLEMENTS_KEY}: mount read-only`).toBe(true);
          expect(at?.mount.subPath, `${where}: ${ENTITLEMENTS_KEY}: subPath mount`).toBeUndefined();
          expect(() => EntitlementPolicy.parse(JSON.parse(json ?? 'null')), `${where}: entitlements`).not.toThrow();
        }
        out.push({ where, role: c.args?.[0] ?? '', config });
      }
    }
    return out;
  }

  it('every embedded Arteria configuration passes the configuration schema', () => {
    expect(configs.length).toBeGreaterThanOrEqual(3);
    for (const { config } of configs) expect(config.http.host).toBe('0.0.0.0');
  });

  it('kustomizations name files and resources that exist', () => {
    const names = new Set(docs.map((d) => `${d.body.kind ?? ''}/${d.body.metadata?.name ?? ''}`));
    for (const k of docs.filter((d) => d.body.kind === 'Kustomization' || d.body.kind === 'Component')) {
      const dir = path.join(DEPLOY, path.dirname(k.file));
      const body = k.body as KustomizationBody;
      for (const ref of [...(body.resources ?? []), ...(body.components ?? []), ...(body.patches ?? []).map((p) => p.path)]) {
        expect(existsSync(path.join(dir, ref)), `${k.file}: ${ref}`).toBe(true);
      }
      for (const patch of body.patches ?? []) {
        const target = docs.find((d) => d.file === path.relative(DEPLOY, path.join(dir, patch.path)));
        if (Array.isArray(target?.body)) {
          // JSON patches select what they change; the rendered overlays below show they reach it.
          expect(patch.target, `${k.file}: JSON patch ${patch.path} needs a target`).toBeDefined();
          continue;
        }
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

  it('NetworkPolicies deny ingress by default; only the ops port (monitoring, own namespace) and the autoscaler gRPC port (KEDA) are reachable', () => {
    type Peer = { namespaceSelector?: { matchLabels?: Record<string, string> }; podSelector?: { matchLabels?: Record<string, string> } };
    type Policy = { podSelector: { matchLabels?: Record<string, string> }; policyTypes?: string[]; ingress?: { from?: Peer[]; ports?: { port?: number }[] }[] };
    const policies = byKind('NetworkPolicy').map((d) => ({ name: d.body.metadata?.name ?? '', spec: (d.body as unknown as { spec: Policy }).spec }));
    const deny = policies.find((p) => Object.keys(p.spec.podSelector.matchLabels ?? {}).length === 0 && (p.spec.ingress ?? []).length === 0);
    expect(deny?.spec.policyTypes).toEqual(['Ingress']);
    // Every allowed port, with who may reach it.
    const allowed = policies.flatMap((p) => (p.spec.ingress ?? []).flatMap((rule) => (rule.ports ?? []).map((port) => ({ policy: p.name, port: port.port, from: rule.from ?? [] }))));
    expect(allowed.map((a) => a.port).sort()).toEqual([18832, 9090]);
    for (const a of allowed) expect(a.from.length, `${a.policy}: a rule without "from" admits everyone`).toBeGreaterThan(0);
    const namespaces = (a: (typeof allowed)[number]): string[] => a.from.flatMap((f) => Object.values(f.namespaceSelector?.matchLabels ?? {}));
    expect(namespaces(allowed.find((a) => a.port === 18832)!)).toEqual(['monitoring']);
    expect(namespaces(allowed.find((a) => a.port === 9090)!)).toEqual(['keda']);
    // The gRPC rule applies to the autoscaler only.
    expect(policies.find((p) => p.spec.ingress?.some((r) => r.ports?.some((x) => x.port === 9090)))?.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'arteria-autoscaler' });
    for (const w of workloads) {
      const labels = (w.body as unknown as Deployment).spec?.template.metadata?.labels ?? {};
      expect(labels['app.kubernetes.io/name'], w.file).toBeDefined();
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
  it('in every overlay, every role that connects to NATS authenticates from a read-only Secret mount, and every setting is a configuration key', async () => {
    expect(overlays).toEqual(['aws', 'onprem']);
    for (const overlay of overlays) {
      const rendered = render(path.join(K8S, 'overlays', overlay));
      for (const b of rendered.filter((d) => d.kind !== 'Namespace')) expect(b.metadata?.namespace, `${overlay}: ${b.kind ?? ''}/${b.metadata?.name ?? ''}`).toBe('arteria');
      const roles = await roleConfigs(overlay, rendered);
      expect(new Set(roles.map((r) => r.role)), overlay).toEqual(new Set(['ingest', 'worker', 'autoscaler', 'dashboard']));
      for (const { where, role, config } of roles) {
        if (!usesNats(config, role)) continue;
        expect(natsCredentials(config), `${where}: NATS credentials (nats.user with nats.passwordFile, or nats.credsFile)`).toMatch(/^nats-(password|creds)$/);
      }
      expect(roles.filter((r) => usesNats(r.config, r.role)).length, overlay).toBeGreaterThan(0);
    }
  });

  const withComponents = (...components: string[]): Body[] => render(path.join(K8S, 'components'), { resources: ['../base'], components: ['gpu-worker', ...components] });

  it('each credentials component reaches every role: NATS user and password, NATS creds file, MQTT TLS files', async () => {
    expect(optionalComponents).toEqual(['entitlements', 'mqtt-tls', 'nats-creds', 'nats-password']);
    const plain = await roleConfigs('base', withComponents());
    expect(plain.length).toBe(5);
    for (const component of optionalComponents.filter((c) => c !== 'entitlements')) {
      const roles = await roleConfigs(component, withComponents(component));
      expect(roles.map((r) => r.where.slice(component.length))).toEqual(plain.map((r) => r.where.slice('base'.length)));
      roles.forEach(({ where, config }, i) => {
        const before = plain[i]?.config;
        const added = FILE_KEYS.filter((k) => getPath(config, k) !== '' && getPath(before, k) === '');
        expect(added.length, `${where}: names no file of the component`).toBeGreaterThan(0);
        if (component.startsWith('nats-')) expect(natsCredentials(config), where).toBe(component);
      });
    }
  });

  it('the entitlements component gives the ingest processes, and only them, a valid entitlements file', async () => {
    const roles = await roleConfigs('entitlements', withComponents('entitlements'));
    expect(roles.length).toBe(5);
    for (const { where, role, config } of roles) {
      expect(config.ingest.entitlementsFile !== '', where).toBe(role === 'ingest');
    }
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!kubectl)('kustomize (kubectl kustomize) renders the overlays\' pods as the checks above see them', () => {
    const view = (b: Body) => {
      const pod = (b as unknown as Deployment).spec?.template.spec as PodSpec;
      return {
        id: `${b.kind ?? ''}/${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`,
        securityContext: pod.securityContext,
        volumes: pod.volumes,
        containers: pod.containers.map((c) => ({ name: c.name, env: c.env, envFrom: c.envFrom, volumeMounts: c.volumeMounts })),
      };
    };
    const pods = (bodies: Body[]) => bodies.filter((b) => b.kind === 'Deployment' || b.kind === 'StatefulSet').map(view).sort((a, b) => a.id.localeCompare(b.id));
    for (const overlay of overlays) {
      const built = spawnSync('kubectl', ['kustomize', path.join(K8S, 'overlays', overlay)], { encoding: 'utf8' });
      expect(built.status, built.stderr).toBe(0);
      expect(pods(parseAllDocuments(built.stdout).map((d) => d.toJS() as Body)), overlay).toEqual(pods(render(path.join(K8S, 'overlays', overlay))));
    }
  });
});
