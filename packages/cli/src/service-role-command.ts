import { AutoscalerRole, DashboardRole } from '@arteria/platform';
import { createLogger } from '@arteria/telemetry';
import { toArteriaError } from '@arteria/protocol';
import { clusterSecrets } from './config/cluster-secrets.js';
import { loadConfig } from './config/load.js';
import { roleDefaults } from './config/role-defaults.js';

export const SERVICE_ROLES_HELP = `arteria autoscaler  run Arteria's scaling policy on the shared queue, ledger and device status
                    and apply the worker count: --autoscale-target keda (external scaler
                    gRPC on --autoscale-grpc-host/--autoscale-grpc-port, metric
                    --autoscale-metric-name) or kubernetes (--autoscale-namespace,
                    --autoscale-deployment: the Deployment's scale subresource)
arteria dashboard   the operator's page (http://{http.host}:{http.port}/) for a cluster:
                    devices, requests, queue, recent results, stage latency

  Same configuration keys, readiness and liveness as the other roles (--http-port
  default: autoscaler 18835, dashboard 18832). SIGTERM stops
  them at once: they hold no work.`;

/** `arteria autoscaler` and `arteria dashboard`: roles that read the shared stores and run no algorithm. */
export async function serviceRoleCommand(role: 'autoscaler' | 'dashboard', argv: string[]): Promise<number> {
  const { config } = await loadConfig({ argv, env: process.env, defaults: roleDefaults(role) });
  const secrets = await clusterSecrets(config);
  // The process's one logger: JSON lines on stderr, handed to every part of the role.
  const logger = createLogger({ role, instance: config.instanceId, level: config.log.level });
  const log = (message: string): void => logger.info(message);
  const onError = (err: Error): void => logger.error({ code: toArteriaError(err).code }, err.message);
  const deps = { platformSecret: secrets.platformSecret, onError, logger };
  const instance = role === 'autoscaler' ? await AutoscalerRole.start(config, deps) : await DashboardRole.start(config, deps);
  const extra = instance instanceof AutoscalerRole && instance.keda ? ` scaler ${instance.keda.address}` : '';
  // One line on stdout that scripts and tests wait for.
  process.stdout.write(`arteria ${role} ready ${instance.http.url} instance ${config.instanceId}${extra}\n`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log(`${signal}: stopping`);
  setTimeout(() => {
    logger.error('did not stop in time; exiting');
    process.exit(1);
  }, 15_000).unref();
  await instance.close();
  log('stopped');
  return 0;
}
