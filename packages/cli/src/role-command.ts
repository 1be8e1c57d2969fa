import { IngestRole, WorkerRole, tunePlatformHeap, type ClusterConfig, type RoleDeps } from '@arteria/platform';
import { createLogger } from '@arteria/telemetry';
import { toArteriaError } from '@arteria/protocol';
import { bundledAlgorithmDirs } from './algorithms.js';
import { clusterSecrets } from './config/cluster-secrets.js';
import { loadConfig } from './config/load.js';
import { roleDefaults } from './config/role-defaults.js';

export const ROLES_HELP = `arteria ingest      admit device requests from a cluster MQTT 5 broker (shared subscription)
arteria worker      lease tasks from the shared queue and run algorithms

  Both take every configuration key as a flag, ARTERIA_* variable or file entry
  (--config <file.yaml|json>); \`arteria config --explain\` lists them with their
  values and sources. Readiness /readyz and liveness /healthz on --http-port
  (default: ingest 18840, worker 18850).
  SIGTERM drains: stop taking work, finish work in hand (worker: at most
  --worker-drain-timeout-ms), exit 0 (1 when work had to be left behind).`;

/** Algorithm folders a role loads: bundled ones (unless turned off) plus the configured ones. */
export function algorithmDirs(config: Readonly<ClusterConfig>): string[] {
  return [...(config.algorithms.bundled ? bundledAlgorithmDirs() : []), ...config.algorithms.dirs];
}

export async function roleCommand(role: 'ingest' | 'worker', argv: string[]): Promise<number> {
  const { config } = await loadConfig({ argv, env: process.env, defaults: roleDefaults(role) });
  const secrets = await clusterSecrets(config);
  // The process's one logger: JSON lines on stderr, handed to every part of the role.
  const logger = createLogger({ role, instance: config.instanceId, level: config.log.level });
  const log = (message: string): void => logger.info(message);
  const onError = (err: Error): void => logger.error({ code: toArteriaError(err).code }, err.message);
  const deps: RoleDeps = { platformSecret: secrets.platformSecret, algorithmDirs: algorithmDirs(config), onError, logger };
  tunePlatformHeap();
  const instance = role === 'ingest' ? await IngestRole.start(config, deps) : await WorkerRole.start(config, deps);
  const stop = async (): Promise<boolean> => {
    if (instance instanceof WorkerRole) return instance.close();
    await instance.close();
    return true;
  };
  // One line on stdout that scripts and tests wait for.
  process.stdout.write(`arteria ${role} ready ${instance.http.url} instance ${config.instanceId}\n`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log(`${signal}: draining`);
  // A last resort in case a cleanup step hangs: the drain bound plus some slack.
  setTimeout(() => {
    logger.error('did not stop in time; exiting');
    process.exit(1);
  }, config.worker.drainTimeoutMs + 15_000).unref();
  const drained = await stop();
  const published = instance instanceof WorkerRole ? `; published ${instance.status().processed} results` : '';
  log(drained ? `stopped${published}` : `stopped with work left behind (it will be redelivered)${published}`);
  return drained ? 0 : 1;
}
