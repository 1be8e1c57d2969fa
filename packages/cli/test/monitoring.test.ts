// The Prometheus alert rules shipped in deploy/monitoring: valid for Prometheus (promtool),
// each firing on its condition (promtool's rule unit tests), built only from metrics the
// platform exports, and each explained in the operations guide.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PlatformMetrics } from '@arteria/platform';

const exec = promisify(execFile);
const DIR = fileURLToPath(new URL('../../../deploy/monitoring/', import.meta.url));
const OPERATIONS = fileURLToPath(new URL('../../../docs/operations.md', import.meta.url));

interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string }[] }[];
}

describe('alert rules (deploy/monitoring)', () => {
  it('pass promtool check and promtool\'s unit tests of every alert', async () => {
    const check = await exec('promtool', ['check', 'rules', 'arteria-alerts.yaml'], { cwd: DIR });
    expect(check.stdout).toContain('SUCCESS: 6 rules found');
    const test = await exec('promtool', ['test', 'rules', 'arteria-alerts.test.yaml'], { cwd: DIR });
    expect(test.stdout).toContain('SUCCESS');
  });

  it('use only metrics the platform exports, and the operations guide explains each alert', async () => {
    const rules = parse(await readFile(`${DIR}arteria-alerts.yaml`, 'utf8')) as RuleFile;
    const metrics = new PlatformMetrics({
      queue: () => Promise.resolve({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0, oldestAgeMs: 0 }),
      workers: () => ({ size: 0, busy: 0 }),
      devicesConnected: () => 0,
    });
    const exported = new Set<string>();
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (m.type.toString() === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${m.name}${suffix}`);
    }
    const guide = await readFile(OPERATIONS, 'utf8');
    const alerts = rules.groups.flatMap((g) => g.rules);
    expect(alerts.length).toBe(6);
    for (const rule of alerts) {
      const used = rule.expr.match(/arteria_[a-z_]+/g) ?? [];
      expect(used.length, rule.alert).toBeGreaterThan(0);
      for (const name of used) expect(exported, `${rule.alert} uses ${name}`).toContain(name);
      expect(guide, `docs/operations.md explains ${rule.alert}`).toContain(`\`${rule.alert}\``);
    }
  });
});
