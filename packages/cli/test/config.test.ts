import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_KEYS, ROLE_HTTP_PORTS, envName, explainConfig, flagName, getPath, loadConfig, roleDefaults } from '@arteria/cli';
import { ClusterConfig } from '@arteria/platform';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const run = promisify(execFile);

function leaves(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix === '' ? k : `${prefix}.${k}`));
}

describe('cluster configuration: file + env + flags, one schema', () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-config-'));
    file = path.join(dir, 'arteria.yaml');
    await writeFile(file, 'mqtt:\n  url: mqtt://file:1883\n  keepaliveS: 20\nworker: { concurrency: 3 }\ns3: { secretAccessKey: from-file }\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('has an env variable and a flag for every key of the schema', () => {
    expect(CONFIG_KEYS.map((k) => k.path).sort()).toEqual(leaves(ClusterConfig.parse({})).sort());
    expect(envName('worker.visibilityMs')).toBe('ARTERIA_WORKER_VISIBILITY_MS');
    expect(flagName('s3.forcePathStyle')).toBe('--s3-force-path-style');
  });

  it('layers defaults < file < env < flags and says where each value came from', async () => {
    const loaded = await loadConfig({
      argv: ['--config', file, '--worker-concurrency', '5', '--algorithms-dirs', 'a', '--algorithms-dirs', 'b', '--s3-force-path-style', 'false'],
      env: { ARTERIA_MQTT_KEEPALIVE_S: '40', ARTERIA_WORKER_CONCURRENCY: '4', PATH: '/bin' },
    });
    expect(loaded.config.mqtt.url).toBe('mqtt://file:1883');
    expect(loaded.config.mqtt.keepaliveS).toBe(40);
    expect(loaded.config.worker.concurrency).toBe(5);
    expect(loaded.config.algorithms.dirs).toEqual(['a', 'b']);
    expect(loaded.config.s3.forcePathStyle).toBe(false);
    expect(loaded.config.http.port).toBe(18832);
    expect(Object.fromEntries(['mqtt.url', 'mqtt.keepaliveS', 'worker.concurrency', 'http.port'].map((k) => [k, loaded.sources.get(k)]))).toEqual({
      'mqtt.url': 'file',
      'mqtt.keepaliveS': 'env',
      'worker.concurrency': 'flag',
      'http.port': 'default',
    });
    const text = explainConfig(loaded);
    expect(text).toMatch(/mqtt\.keepaliveS\s+40\s+\(env; env ARTERIA_MQTT_KEEPALIVE_S, flag --mqtt-keepalive-s\)/);
    expect(text).toContain('********');
    expect(text).not.toContain('from-file');
    expect(getPath(loaded.config, 'worker.concurrency')).toBe(5);
  });

  it('rejects unknown keys and bad values from every source, naming them', async () => {
    await writeFile(path.join(dir, 'typo.json'), JSON.stringify({ worker: { concurency: 2 } }));
    await expect(loadConfig({ argv: ['--config', path.join(dir, 'typo.json')], env: {} })).rejects.toThrow(/concurency/);
    await expect(loadConfig({ argv: [], env: { ARTERIA_WORKER_CONCURENCY: '2' } })).rejects.toThrow(/ARTERIA_WORKER_CONCURENCY/);
    await expect(loadConfig({ argv: ['--worker-concurency', '2'], env: {} })).rejects.toThrow(/--worker-concurency/);
    await expect(loadConfig({ argv: ['--http-port', 'eighty'], env: {} })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(loadConfig({ argv: ['--mqtt-url', 'http://broker'], env: {} })).rejects.toThrow(/mqtt\.url/);
  });

  it('takes the log level from LOG_LEVEL, under ARTERIA_LOG_LEVEL and --log-level, and refuses an unknown level', async () => {
    expect((await loadConfig({ argv: [], env: {} })).config.log.level).toBe('info');
    const fromAlias = await loadConfig({ argv: [], env: { LOG_LEVEL: 'debug' } });
    expect(fromAlias.config.log.level).toBe('debug');
    expect(fromAlias.sources.get('log.level')).toBe('env');
    expect(explainConfig(fromAlias)).toMatch(/log\.level\s+"debug"\s+\(env; env ARTERIA_LOG_LEVEL or LOG_LEVEL, flag --log-level\)/);
    expect((await loadConfig({ argv: [], env: { LOG_LEVEL: 'debug', ARTERIA_LOG_LEVEL: 'warn' } })).config.log.level).toBe('warn');
    expect((await loadConfig({ argv: ['--log-level', 'error'], env: { LOG_LEVEL: 'debug' } })).config.log.level).toBe('error');
    await expect(loadConfig({ argv: [], env: { LOG_LEVEL: 'loud' } })).rejects.toThrow(/log\.level/);
  });

  it('arteria config --explain prints the effective configuration with its sources', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'config', '--explain', '--config', file, '--http-port', '9000'], { env: { ...process.env, ARTERIA_QUEUE_KIND: 'nats' } });
    expect(stdout).toContain(`(file: ${file})`);
    expect(stdout).toMatch(/queue\.kind\s+"nats"\s+\(env;/);
    expect(stdout).toMatch(/http\.port\s+9000\s+\(flag;/);
    expect(stdout).toMatch(/worker\.concurrency\s+3\s+\(file;/);
  });

  it('gives each role its own default HTTP port, under every other source', async () => {
    const ports = ROLE_HTTP_PORTS;
    expect(new Set(Object.values(ports)).size).toBe(Object.keys(ports).length);
    for (const role of ['ingest', 'worker', 'autoscaler', 'dashboard'] as const) {
      const loaded = await loadConfig({ argv: [], env: {}, defaults: roleDefaults(role) });
      expect(loaded.config.http.port).toBe(ports[role]);
      expect(loaded.sources.get('http.port')).toBe('default');
    }
    await writeFile(path.join(dir, 'port.yaml'), 'http: { port: 9100 }\n');
    expect((await loadConfig({ argv: ['--config', path.join(dir, 'port.yaml')], env: {}, defaults: roleDefaults('worker') })).config.http.port).toBe(9100);
    const [explained, refused] = await Promise.allSettled([run(process.execPath, [CLI, 'config', '--explain', '--role', 'worker']), run(process.execPath, [CLI, 'config', '--role', 'gateway'])]);
    expect(explained.status === 'fulfilled' && explained.value.stdout).toMatch(/http\.port\s+18850\s+\(default;/);
    expect(refused.status === 'rejected' && String((refused.reason as { stderr?: unknown }).stderr)).toContain('--role must be one of');
  }, 90_000);
});

