import path from 'node:path';
import { parseArgs } from 'node:util';
import { ArteriaError } from '@arteria/protocol';
import { int } from '../args.js';
import { clusterPaths, isOurs, readState, requireState, writeState, type ClusterPaths, type ClusterState } from './layout.js';
import { ready, stop } from './processes.js';
import { addTenant, parseDeviceName, provisionDevice, revokeProvisionedDevice, writeGatewayConfig } from './provision.js';
import { CLUSTER_PORTS, clusterUp } from './up.js';

const DEFAULT_DIR = '.arteria-cluster';

export const CLUSTER_HELP = `arteria cluster up [options]       a local cluster: each role its own process, on its own port
  --dir <path>             everything of this cluster: config, secrets, data, logs (default ${DEFAULT_DIR})
  --ingests <n>            ingest processes (default 2)      --workers <n>  worker processes (default 2)
  --worker-concurrency <n> tasks per worker process (default 2)
  --host <addr>            where the broker and the store listen (default 127.0.0.1)
  --mqtt-port <n> (${CLUSTER_PORTS.mqtt})  --s3-port <n> (${CLUSTER_PORTS.s3})  --nats-port <n> (${CLUSTER_PORTS.nats})  --dashboard-port <n> (${CLUSTER_PORTS.dashboard})
  --autoscaler-port <n> (${CLUSTER_PORTS.autoscaler})  --scaler-port <n> (${CLUSTER_PORTS.scaler}, KEDA gRPC)
  --ingest-port <n> (${CLUSTER_PORTS.ingest}: ingest i on n+i-1)  --worker-port <n> (${CLUSTER_PORTS.worker}: worker i on n+i-1)
  --bucket <name>          (default arteria-runs; the store creates it)
  --mosquitto <path>, --nats-server <path>   the engines' executables (default: found on PATH or /usr/sbin)
  --wait-s <n>             how long each process may take to be ready (default 120)
arteria cluster down [--dir D]      stop every process \`up\` started (roles drain first)
arteria cluster status [--dir D]    each process: pid, port, ready or not (exit 1 unless all are ready)
arteria cluster tenant add <tenant> [--dir D]               a tenant with its own provisioning secret
arteria cluster device add <tenant>/<device> [--dir D]      a device account on the broker; prints its
                                                           token and writes its gateway configuration
arteria cluster device rotate-token <tenant>/<device> [--dir D]   a new token; the old one stops working
                                                           at the device's next connection
  --token-days <n>         add, rotate-token, reinstate: the token expires after n days (default 90)
arteria cluster device revoke <tenant>/<device> [--reason R] [--dir D]
                                                           the broker disconnects it and refuses its logins,
                                                           ingest its requests; other devices are untouched
arteria cluster device reinstate <tenant>/<device> [--dir D]   lifts a revocation with a new token`;

const COMMON = { dir: { type: 'string', default: DEFAULT_DIR } } as const;

export async function clusterCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || rest.includes('--help')) {
    process.stdout.write(`${CLUSTER_HELP}\n`);
    return 0;
  }
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  switch (sub) {
    case 'up':
      return up(rest, say);
    case 'down': {
      const { values } = parseArgs({ args: rest, options: COMMON, strict: true });
      return down(clusterPaths(values.dir), say);
    }
    case 'status': {
      const { values } = parseArgs({ args: rest, options: COMMON, strict: true });
      return status(clusterPaths(values.dir), say);
    }
    case 'tenant':
    case 'device':
      return provision(sub, rest, say);
    default:
      throw new ArteriaError('CONFIG_INVALID', `unknown cluster command ${JSON.stringify(sub)}\n\n${CLUSTER_HELP}`);
  }
}

async function up(argv: string[], say: (line: string) => void): Promise<number> {
  const portFlags = ['mqtt-port', 's3-port', 'nats-port', 'dashboard-port', 'autoscaler-port', 'scaler-port', 'ingest-port', 'worker-port'] as const;
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON,
      ingests: { type: 'string', default: '2' },
      workers: { type: 'string', default: '2' },
      'worker-concurrency': { type: 'string', default: '2' },
      host: { type: 'string', default: '127.0.0.1' },
      bucket: { type: 'string', default: 'arteria-runs' },
      mosquitto: { type: 'string', default: 'mosquitto' },
      'nats-server': { type: 'string', default: 'nats-server' },
      'wait-s': { type: 'string', default: '120' },
      ...Object.fromEntries(portFlags.map((f) => [f, { type: 'string' }] as const)),
    },
  });
  const port = (flag: (typeof portFlags)[number], fallback: number): number => {
    const v = (values as Record<string, string | undefined>)[flag];
    return v === undefined ? fallback : int(v, `--${flag}`);
  };
  const paths = clusterPaths(values.dir);
  const began = performance.now();
  const state = await clusterUp(
    paths,
    {
      ingests: int(values.ingests, '--ingests'),
      workers: int(values.workers, '--workers'),
      workerConcurrency: int(values['worker-concurrency'], '--worker-concurrency'),
      host: values.host,
      bucket: values.bucket,
      mosquitto: values.mosquitto,
      natsServer: values['nats-server'],
      waitMs: int(values['wait-s'], '--wait-s') * 1000,
      ports: {
        mqtt: port('mqtt-port', CLUSTER_PORTS.mqtt),
        s3: port('s3-port', CLUSTER_PORTS.s3),
        nats: port('nats-port', CLUSTER_PORTS.nats),
        dashboard: port('dashboard-port', CLUSTER_PORTS.dashboard),
        autoscaler: port('autoscaler-port', CLUSTER_PORTS.autoscaler),
        scaler: port('scaler-port', CLUSTER_PORTS.scaler),
        ingest: port('ingest-port', CLUSTER_PORTS.ingest),
        worker: port('worker-port', CLUSTER_PORTS.worker),
      },
    },
    say,
  );
  say(`Arteria cluster is up (${((performance.now() - began) / 1000).toFixed(1)} s) in ${paths.root}`);
  describe(paths, state, say);
  say('');
  say('Next: a device and a first run:');
  say(`  arteria cluster device add demo/xa1 --dir ${paths.root}`);
  say(`  arteria gateway send --config ${path.join(paths.gateways, 'demo.xa1.json')} <run.dcm>`);
  return 0;
}

function describe(paths: ClusterPaths, state: ClusterState, say: (line: string) => void): void {
  say(`  MQTT broker     ${state.mqttUrl}   (Mosquitto, user ${state.brokerUser}; config ${paths.broker}/)`);
  say(`  object store    ${state.s3Endpoint}   bucket ${state.bucket}, key in ${paths.storeCredentials}`);
  say(`  queue, ledger   ${state.natsUrl}   (nats-server with JetStream; data ${paths.natsStore})`);
  say(`  dashboard       ${state.dashboardUrl}`);
  say(`  role config     ${paths.roleConfig}   secrets ${paths.secrets}`);
  say(`  data            ${paths.root}`);
  say('  processes:');
  for (const p of state.processes) say(`    ${p.name.padEnd(12)} pid ${String(p.pid).padEnd(8)} port ${String(p.port).padEnd(6)} ${p.url === undefined ? '' : `${p.url}/readyz  `}log ${path.relative(paths.root, p.log)}`);
  say(`  state file      ${paths.state}`);
}

async function down(paths: ClusterPaths, say: (line: string) => void): Promise<number> {
  const state = await readState(paths);
  if (state === undefined || state.processes.length === 0) {
    say(`no cluster runs in ${paths.root}`);
    return 0;
  }
  const engines = new Set(['mosquitto', 'nats-server', 'store']);
  // Roles first (workers drain their tasks, ingests finish what they admit), then the engines they use.
  const roles = state.processes.filter((p) => !engines.has(p.name));
  const stopped = await Promise.all(roles.map((p) => stop(p, paths.root, 30_000)));
  stopped.push(...(await Promise.all(state.processes.filter((p) => engines.has(p.name)).map((p) => stop(p, paths.root, 10_000)))));
  await writeState(paths, { ...state, processes: [] });
  say(`stopped ${stopped.filter(Boolean).length} processes of the cluster in ${paths.root} (data, logs and devices are kept)`);
  return 0;
}

async function status(paths: ClusterPaths, say: (line: string) => void): Promise<number> {
  const state = await requireState(paths);
  if (state.processes.length === 0) {
    say(`the cluster in ${paths.root} is stopped`);
    return 1;
  }
  let allReady = true;
  for (const p of state.processes) {
    const alive = await isOurs(p.pid, paths.root);
    const isReady = alive && (await ready(p));
    allReady &&= isReady;
    say(`${p.name.padEnd(12)} pid ${String(p.pid).padEnd(8)} port ${String(p.port).padEnd(6)} ${isReady ? 'ready' : alive ? 'NOT READY' : 'NOT RUNNING'}   log ${p.log}`);
  }
  return allReady ? 0 : 1;
}

const DEVICE_OPTIONS = { ...COMMON, 'token-days': { type: 'string', default: '90' }, reason: { type: 'string' } } as const;

async function provision(kind: 'tenant' | 'device', argv: string[], say: (line: string) => void): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({ args: rest, options: kind === 'device' ? DEVICE_OPTIONS : COMMON, strict: true, allowPositionals: true });
  const paths = clusterPaths(values.dir);
  const name = positionals[0] ?? '';
  if (kind === 'tenant') {
    if (action !== 'add') throw new ArteriaError('CONFIG_INVALID', `unknown tenant command ${JSON.stringify(action ?? '')}\n\n${CLUSTER_HELP}`);
    await requireState(paths);
    await addTenant(paths, name);
    say(`tenant ${name} added (its secret is in ${paths.secrets}); add its devices with \`arteria cluster device add ${name}/<device> --dir ${paths.root}\``);
    return 0;
  }
  const modes = { add: 'add', 'rotate-token': 'rotate', reinstate: 'reinstate' } as const;
  if (action !== 'revoke' && !(action !== undefined && Object.hasOwn(modes, action))) throw new ArteriaError('CONFIG_INVALID', `unknown device command ${JSON.stringify(action ?? '')}\n\n${CLUSTER_HELP}`);
  const address = parseDeviceName(name);
  const state = await requireState(paths);
  const options = values as { 'token-days'?: string; reason?: string };
  if (action === 'revoke') {
    const { revokedAt } = await revokeProvisionedDevice(paths, state, address, options.reason);
    say(`device ${address.tenant}/${address.device} revoked at ${new Date(revokedAt).toISOString()}: the broker refuses its logins and ingest its requests; the tenant's other devices are untouched`);
    return 0;
  }
  const mode = modes[action as keyof typeof modes];
  const ttlMs = int(options['token-days'] ?? '90', '--token-days') * 86_400_000;
  const { token, generation, expiresAt } = await provisionDevice(paths, state, address, mode, ttlMs);
  const file = await writeGatewayConfig(paths, state, address, token);
  const what = { add: 'added', rotate: `has a new token (generation ${generation}); the previous one is refused from its next connection`, reinstate: `is reinstated with a new token (generation ${generation}); the token it held when revoked stays refused` }[mode];
  say(`device ${address.tenant}/${address.device} ${what}`);
  say(`  MQTT username  ${address.tenant}/${address.device}`);
  say(`  token          ${token}`);
  say(`  expires        ${new Date(expiresAt).toISOString()}   (renew before then: arteria cluster device rotate-token)`);
  say(`  broker         ${state.mqttUrl}    object store ${state.s3Endpoint} (bucket ${state.bucket})`);
  say(`  gateway config ${file}   (mode 0600: it holds the token and the store's key)`);
  say(`Send a run:     arteria gateway send --config ${file} <file.dcm|folder>`);
  say(`Or as a service: arteria-gateway run --config ${file}   (add its dicom/watchFolder sections, docs/gateway.md)`);
  return 0;
}
