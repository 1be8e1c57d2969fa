// What deploy/monitoring ships: the Prometheus alert rules, valid for Prometheus (promtool),
// each firing on its condition (promtool's rule unit tests), built only from metrics the
// platform exports, and each explained in the operations guide; the Grafana dashboard,
// whose every query names only exported metrics; the ServiceMonitor and PodMonitor, which
// select what deploy/k8s labels and scrape the port it names.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { PlatformMetrics } from '@arteria/telemetry';

const exec = promisify(execFile);
const DIR = fileURLToPath(new URL('../../../deploy/monitoring/', import.meta.url));
const OPERATIONS = fileURLToPath(new URL('../../../docs/operations.md', import.meta.url));
const K8S = fileURLToPath(new URL('../../../deploy/k8s/', import.meta.url));

interface K8sDoc {
  kind: string;
  metadata: { name: string };
  spec: {
    ports?: { name: string }[];
    template?: { metadata: { labels: Record<string, string> }; spec: { containers: { ports?: { name: string }[] }[] } };
  };
}

interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string }[] }[];
}

/** Every series name the platform's processes export (a worker and an autoscaler source: all gauges). */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new PlatformMetrics({
    queue: () => Promise.resolve({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0, oldestAgeMs: 0 }),
    workers: () => ({ size: 0, busy: 0 }),
    desiredWorkers: () => 0,
    devicesConnected: () => 0,
  });
  const exported = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    exported.add(m.name);
    if (m.type.toString() === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${m.name}${suffix}`);
  }
  return exported;
}

/** Metric names in a PromQL expression: Arteria's and the Node.js process metrics. */
const metricNames = (expr: string): string[] => expr.match(/\b(?:arteria|process|nodejs)_[a-z0-9_]+/g) ?? [];

describe('alert rules (deploy/monitoring)', () => {
  it('pass promtool check and promtool\'s unit tests of every alert', async () => {
    const check = await exec('promtool', ['check', 'rules', 'arteria-alerts.yaml'], { cwd: DIR });
    expect(check.stdout).toContain('SUCCESS: 6 rules found');
    const test = await exec('promtool', ['test', 'rules', 'arteria-alerts.test.yaml'], { cwd: DIR });
    expect(test.stdout).toContain('SUCCESS');
  });

  it('use only metrics the platform exports, and the operations guide explains each alert', async () => {
    const rules = parse(await readFile(`${DIR}arteria-alerts.yaml`, 'utf8')) as RuleFile;
    const exported = await exportedNames();
    const guide = await readFile(OPERATIONS, 'utf8');
    const alerts = rules.groups.flatMap((g) => g.rules);
    expect(alerts.length).toBe(6);
    for (const rule of alerts) {
      const used = metricNames(rule.expr);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      for (const name of used) expect(exported, `${rule.alert} uses ${name}`).toContain(name);
      expect(guide, `docs/operations.md explains ${rule.alert}`).toContain(`\`${rule.alert}\``);
    }
  });
});

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

describe('Grafana dashboard (deploy/monitoring)', () => {
  it('is valid JSON whose every query names only metrics the platform exports', async () => {
    const dashboard = JSON.parse(await readFile(`${DIR}arteria-grafana-dashboard.json`, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string; type: string }[] } };
    expect(dashboard.uid).toBe('arteria-overview');
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource' }));
    const exported = await exportedNames();
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(12);
    const used = new Set<string>();
    for (const panel of graphs) {
      expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets ?? []) {
        const names = metricNames(expr);
        expect(names.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        for (const name of names) {
          expect(exported, `${panel.title} uses ${name}`).toContain(name);
          used.add(name);
        }
      }
    }
    // The story an operator needs: desired and running workers apart, compute time per
    // algorithm version, and the processes' own health.
    for (const name of ['arteria_workers', 'arteria_workers_desired', 'arteria_algorithm_duration_seconds_bucket', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) expect(used).toContain(name);
  });
});

interface Monitor {
  kind: string;
  apiVersion: string;
  spec: { selector: { matchLabels: Record<string, string> }; endpoints?: { port: string; path: string }[]; podMetricsEndpoints?: { port: string; path: string }[] };
}

describe('ServiceMonitor and PodMonitor (deploy/monitoring)', () => {
  it('select the Services and worker pods deploy/k8s makes and scrape their http port', async () => {
    const monitors = parseAllDocuments(await readFile(`${DIR}arteria-servicemonitor.yaml`, 'utf8')).map((d) => d.toJS() as Monitor);
    const service = monitors.find((m) => m.kind === 'ServiceMonitor');
    const pod = monitors.find((m) => m.kind === 'PodMonitor');
    expect(service?.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pod?.apiVersion).toBe('monitoring.coreos.com/v1');

    const base = `${K8S}base/`;
    const kustomization = parse(await readFile(`${base}kustomization.yaml`, 'utf8')) as { labels: { pairs: Record<string, string> }[]; resources: string[] };
    // kustomize puts these labels on every resource's metadata: the Services carry them.
    const common = Object.assign({}, ...kustomization.labels.map((l) => l.pairs)) as Record<string, string>;
    expect(common).toMatchObject(service?.spec.selector.matchLabels ?? { missing: true });
    const docs = (await Promise.all(kustomization.resources.map(async (f) => parseAllDocuments(await readFile(`${base}${f}`, 'utf8')).map((d) => d.toJS() as K8sDoc)))).flat();
    const services = docs.filter((d) => d.kind === 'Service');
    expect(services.map((s) => s.metadata.name).sort()).toEqual(['arteria-autoscaler', 'arteria-dashboard', 'arteria-ingest']);
    for (const s of services) expect(s.spec.ports?.map((p) => p.name), s.metadata.name).toContain(service?.spec.endpoints?.[0]?.port);
    expect(service?.spec.endpoints?.[0]?.path).toBe('/metrics');

    // Workers have no Service: the PodMonitor finds their pods by label and port name.
    const workers = docs.filter((d) => d.kind === 'Deployment' && Object.entries(pod?.spec.selector.matchLabels ?? { missing: 'x' }).every(([k, v]) => d.spec.template?.metadata.labels[k] === v));
    expect(workers.map((w) => w.metadata.name)).toEqual(['arteria-worker-cpu']);
    for (const w of workers) expect(w.spec.template?.spec.containers.flatMap((c) => c.ports?.map((p) => p.name) ?? [])).toContain(pod?.spec.podMetricsEndpoints?.[0]?.port);
    expect(pod?.spec.podMetricsEndpoints?.[0]?.path).toBe('/metrics');
  });
});
