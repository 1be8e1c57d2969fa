import path from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedPlatform, tunePlatformHeap } from '@arteria/platform';
import { createLogger, parseLogLevel } from '@arteria/telemetry';
import { readEntitlementsFile } from '@arteria/ingest';
import { SimulatedFleet } from '@arteria/fleet';
import { pinoGatewayLogger } from '@arteria/gateway';
import { bundledAlgorithmDirs } from './algorithms.js';
import { describeResult } from './describe-result.js';
import { DEFAULT_TENANT, loadOrCreateSecrets } from './secrets.js';
import { embeddedBrokerTls } from './up-tls.js';
import { StatusLine, formatStatus } from './status-line.js';
import { int, num } from './args.js';
import { usageError } from '@arteria/command';
import { toArteriaError } from '@arteria/protocol';

export const UP_HELP = `arteria up: the whole platform in one process, with a simulated fleet

  --mqtt-port <n>       embedded MQTT broker port (default 18830)
  --pki-dir <dir>       Arteria's CA (\`arteria pki init\`): a second MQTT listener with TLS,
                        whose certificate is issued from it; devices may log in with a
                        certificate from it (checked against its CRL, reread on change)
  --mqtts-port <n>      that TLS listener's port (default 18833)
  --require-client-certs  on the TLS listener, devices must show a certificate (tokens
                        there are for platform services only)
  --allow-identified-inputs <tenant>
                        run this tenant's inputs even when they do not declare
                        de-identification (repeatable; default: none, DEIDENTIFICATION_MISSING)
  --s3-port <n>         embedded S3-API store port (default 18831)
  --http-port <n>       dashboard at /, /metrics, /healthz, /api/status (default 18832)
  --data-dir <path>     queue, ledger, objects, secrets (default .arteria)
  --workers <n>         worker pool size (default 4)
  --devices <n>         simulated devices, 0 for none (default 8)
  --run-frames <n>      frames per synthetic run (default 30)
  --run-size <n>        rows and columns of each frame (default 128)
  --run-interval-s <s>  mean seconds between runs in a procedure (default 4)
  --procedure-s <s>     mean procedure length in seconds (default 60)
  --idle-s <s>          mean idle time between procedures in seconds (default 20)
  --duration-s <s>      stop after this many seconds (default: run until Ctrl-C)
  --fleet-algorithm <spec>
                        what the simulated devices ask for, name@range (repeatable; default
                        contrast-injection@^1 and balloon-inflation@^3)
  --algorithm-dir <p>   an extra algorithm folder (repeatable)
  --entitlements <f>    JSON file of which algorithm versions each tenant/device may run
  --trust-key <pub>     an Ed25519 public key whose algorithm signatures count (repeatable)
  --require-signatures  load only algorithm versions signed by a trusted key (the bundled,
                        unsigned algorithms are then left out; see docs/algorithms.md)
  --quiet               no per-result lines
  --log-level <level>   trace, debug, info (a line per request event), warn, error,
                        fatal or silent (default: LOG_LEVEL, else warn: the result
                        lines already show the happy path)`;

export async function up(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'mqtt-port': { type: 'string' },
      'pki-dir': { type: 'string' },
      'mqtts-port': { type: 'string' },
      'require-client-certs': { type: 'boolean', default: false },
      'allow-identified-inputs': { type: 'string', multiple: true, default: [] },
      's3-port': { type: 'string' },
      'http-port': { type: 'string' },
      'data-dir': { type: 'string', default: '.arteria' },
      workers: { type: 'string' },
      devices: { type: 'string', default: '8' },
      'run-frames': { type: 'string', default: '30' },
      'run-size': { type: 'string', default: '128' },
      'run-interval-s': { type: 'string', default: '4' },
      'procedure-s': { type: 'string', default: '60' },
      'idle-s': { type: 'string', default: '20' },
      'duration-s': { type: 'string' },
      'fleet-algorithm': { type: 'string', multiple: true, default: [] },
      'algorithm-dir': { type: 'string', multiple: true, default: [] },
      entitlements: { type: 'string' },
      'trust-key': { type: 'string', multiple: true, default: [] },
      'require-signatures': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      'log-level': { type: 'string' },
    },
  });
  const dataDir = path.resolve(values['data-dir']);
  const mqttTls = await embeddedBrokerTls(values);
  const secrets = await loadOrCreateSecrets(dataDir);
  const status = new StatusLine();
  const levelText = values['log-level'] ?? process.env.LOG_LEVEL;
  const level = levelText === undefined || levelText === '' ? 'warn' : parseLogLevel(levelText);
  if (level === undefined) throw usageError(`--log-level must be one of trace, debug, info, warn, error, fatal, silent; got ${JSON.stringify(levelText)}`);
  // The process's one logger: JSON lines written above the status line.
  const logger = createLogger({ role: 'platform', level, destination: { write: (line: string) => status.log(line.trimEnd()) } });
  tunePlatformHeap();
  const platform = await EmbeddedPlatform.start(
    {
      dataDir,
      ...(values['mqtt-port'] !== undefined && { mqttPort: int(values['mqtt-port'], '--mqtt-port') }),
      ...(values['s3-port'] !== undefined && { s3Port: int(values['s3-port'], '--s3-port') }),
      ...(values['http-port'] !== undefined && { httpPort: int(values['http-port'], '--http-port') }),
      ...(values.workers !== undefined && { workers: int(values.workers, '--workers') }),
      ...(values.entitlements !== undefined && { entitlements: await readEntitlementsFile(values.entitlements) }),
      ...(mqttTls === undefined ? {} : { mqttTls }),
      allowIdentifiedInputs: values['allow-identified-inputs'],
      tenants: secrets.tenants,
      platformSecret: secrets.platformSecret,
      ...(secrets.opsToken !== undefined ? { opsToken: secrets.opsToken } : {}),
      algorithmDirs: [...(values['require-signatures'] ? [] : bundledAlgorithmDirs()), ...values['algorithm-dir'].map((d) => path.resolve(d))],
      algorithmTrust: { publicKeyFiles: values['trust-key'].map((f) => path.resolve(f)), requireSignatures: values['require-signatures'] },
      // The standard OpenTelemetry variable: set, spans go to that collector.
      ...(process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? { tracing: { otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT } } : {}),
    },
    (error) => logger.error({ code: toArteriaError(error).code }, error.message),
    undefined,
    logger,
  );
  status.log(`Arteria is up: MQTT ${platform.mqttUrl}${platform.mqttsUrl === undefined ? '' : `  MQTTS ${platform.mqttsUrl}${mqttTls?.requireCertificate === true ? ' (client certificates required)' : ''}`}  S3 ${platform.s3Endpoint}  metrics ${platform.http.url}/metrics`);
  // The fragment never reaches the server or its logs; the login page reads it.
  status.log(`Dashboard: ${platform.http.url}/login#token=${platform.options.opsToken}`);
  status.log(`Operator token (dashboard, /api, /metrics as "Authorization: Bearer ..."): ${platform.options.opsToken}  (kept in ${path.join(dataDir, 'secrets.json')})`);
  for (const a of platform.registry.list()) status.log(`  algorithm ${a.manifest.name}@${a.manifest.version} ${a.digest}${a.signedBy ? ` signed by ${a.signedBy}` : ''}`);

  const gatewayLogger = pinoGatewayLogger(logger.child({ component: 'gateway' }));
  const devices = int(values.devices, '--devices');
  const size = int(values['run-size'], '--run-size');
  const fleet =
    devices === 0
      ? undefined
      : await SimulatedFleet.start(
          {
            devices,
            tenant: DEFAULT_TENANT,
            tenantSecret: secrets.tenants[DEFAULT_TENANT] ?? "",
            mqttUrl: platform.mqttUrl,
            s3: { endpoint: platform.s3Endpoint, bucket: platform.options.bucket },
            dataDir: path.join(dataDir, 'fleet'),
            run: { rows: size, columns: size, frames: int(values['run-frames'], '--run-frames') },
            ...(values['fleet-algorithm'].length > 0 ? { algorithms: values['fleet-algorithm'] } : {}),
            profile: {
              meanRunIntervalMs: num(values['run-interval-s'], '--run-interval-s') * 1000,
              meanProcedureMs: num(values['procedure-s'], '--procedure-s') * 1000,
              meanIdleMs: num(values['idle-s'], '--idle-s') * 1000,
            },
          },
          {
            onResult: (device, result) => {
              if (!values.quiet) status.log(describeResult(device, result));
            },
            onError: (device, error) => status.log(`${device}: ${error.code}: ${error.message}`),
          },
          gatewayLogger,
        );
  if (fleet) status.log(`Simulated fleet: ${devices} devices of tenant "${DEFAULT_TENANT}" sending ${size}x${size} XA runs`);

  const refresh = async (): Promise<void> => status.update(formatStatus(await platform.status(), fleet?.stats()));
  const timer = setInterval(() => {
    refresh().catch((err: unknown) => status.log(`status: ${(err as Error).message}`));
  }, 500);

  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (values['duration-s'] !== undefined) setTimeout(stop, num(values['duration-s'], '--duration-s') * 1000).unref();
  });
  clearInterval(timer);
  await refresh();
  status.end();
  status.log('Stopping: devices, then workers drain, then servers.');
  await fleet?.close();
  await platform.close();
  const stats = fleet?.stats();
  if (stats) status.log(`Sent ${stats.sent} runs, received ${stats.received} results (ok ${stats.ok}, rejected ${stats.rejected}, failed ${stats.failed}).`);
  return 0;
}
