import type { Command, CommandContext, Program } from '@arteria/command';
import { ARTERIA_VERSION } from './version.js';

type Run = (argv: string[], context: CommandContext) => Promise<number>;
type Help = NonNullable<Command['help']>;

/**
 * A command module, imported the first time one of its commands runs or shows its help.
 * Most modules load the platform (over a second and 100 MB); `arteria --version`, the
 * command list and commands that need little of it start without it.
 */
function lazy<M>(load: () => Promise<M>): { help: (pick: (m: M) => string) => Help; run: (pick: (m: M) => Run) => Run } {
  return {
    help: (pick) => () => load().then(pick),
    run: (pick) => (argv, context) => load().then((m) => pick(m)(argv, context)),
  };
}

const gateway = lazy(() => import('./gateway-command.js'));
const roles = lazy(() => import('./role-command.js'));
const serviceRoles = lazy(() => import('./service-role-command.js'));
const store = lazy(() => import('./store-command.js'));
const cluster = lazy(() => import('./cluster/command.js'));
const config = lazy(() => import('./config-command.js'));
const broker = lazy(() => import('./broker-command.js'));
const pki = lazy(() => import('./pki-command.js'));
const plan = lazy(() => import('./plan-command.js'));
const simulate = lazy(() => import('./simulate-command.js'));
const loadtest = lazy(() => import('./loadtest/loadtest-command.js'));
const devices = lazy(() => import('./devices-command.js'));
const credentials = lazy(() => import('./device-credentials-command.js'));
const serveModels = lazy(() => import('./serve-models-command.js'));
const algorithm = lazy(() => import('./algorithm-command.js'));
const audit = lazy(() => import('./audit-command.js'));
const dlq = lazy(() => import('./dlq-command.js'));
const upCommand = lazy(() => import('./up.js'));
// Helps that several entries share.
const clusterHelp = cluster.help((m) => m.CLUSTER_HELP);
const devicesHelp = devices.help((m) => m.DEVICES_HELP);
const serveModelsHelp = serveModels.help((m) => m.SERVE_MODELS_HELP);
const serveModelsRun = serveModels.run((m) => m.serveModelsCommand);

/**
 * Subcommands (name: summary) that one function runs, taking the subcommand's name as its
 * first word; they share their parent's help.
 */
const subs = (help: Help, run: Run, summaries: Readonly<Record<string, string>>): Command[] =>
  Object.entries(summaries).map(([name, summary]) => ({ name, summary, help, run: (argv, context) => run([name, ...argv], context) }));

/** A command made only of subcommands that one function runs. */
const group = (name: string, summary: string, help: Help, run: Run, summaries: Readonly<Record<string, string>>): Command => ({
  name,
  summary,
  help,
  subcommands: subs(help, run, summaries),
});

/**
 * Every `arteria` command. Adding a command is adding an entry here; `--help`,
 * `--version`, exit statuses and the help walk test follow from the table.
 */
export const ARTERIA_COMMANDS: readonly Command[] = [
  { name: 'up', summary: 'the whole platform in one process, with a simulated fleet', help: upCommand.help((m) => m.UP_HELP), run: upCommand.run((m) => m.up) },
  group('gateway', 'the edge gateway (send runs, watch a folder)', gateway.help((m) => m.GATEWAY_HELP), gateway.run((m) => m.gatewayCommand), {
    send: 'send runs, wait for and print results',
    run: 'long-running: send every run that lands in the --watch folder',
    sample: 'write a synthetic XA run (no patient data) to try a platform with',
  }),
  { name: 'ingest', summary: 'cluster role: admit requests from an MQTT 5 broker', help: roles.help((m) => m.ROLES_HELP), run: roles.run((m) => (argv) => m.roleCommand('ingest', argv)) },
  { name: 'worker', summary: 'cluster role: run algorithms on queued tasks', help: roles.help((m) => m.ROLES_HELP), run: roles.run((m) => (argv) => m.roleCommand('worker', argv)) },
  { name: 'autoscaler', summary: 'cluster role: worker count from the queueing model (KEDA or Kubernetes)', help: serviceRoles.help((m) => m.SERVICE_ROLES_HELP), run: serviceRoles.run((m) => (argv) => m.serviceRoleCommand('autoscaler', argv)) },
  { name: 'dashboard', summary: "cluster role: the operator's page on the shared stores", help: serviceRoles.help((m) => m.SERVICE_ROLES_HELP), run: serviceRoles.run((m) => (argv) => m.serviceRoleCommand('dashboard', argv)) },
  { name: 'store', summary: 'an S3-API object store (local disk) as its own process', help: store.help((m) => m.STORE_HELP), run: store.run((m) => m.storeCommand) },
  {
    name: 'cluster',
    summary: 'a local cluster of separate processes: up, down, status, tenants, devices',
    help: clusterHelp,
    subcommands: [
      ...subs(clusterHelp, cluster.run((m) => m.clusterCommand), {
        up: 'start every process of a cluster, each on its own port',
        down: 'stop every process `cluster up` started',
        status: 'each process: pid, port, ready or not',
      }),
      group('tenant', 'tenants of the cluster', clusterHelp, cluster.run((m) => (argv) => m.clusterCommand(['tenant', ...argv])), { add: 'a tenant with its own provisioning secret' }),
      group('device', 'devices of the cluster', clusterHelp, cluster.run((m) => (argv) => m.clusterCommand(['device', ...argv])), {
        add: 'a broker account, its token and its gateway configuration',
        'rotate-token': 'a new token for one device',
        revoke: 'refuse one device, whatever credential it holds',
        reinstate: 'lift a revocation, with a new token',
      }),
    ],
  },
  { name: 'config', summary: 'print the effective cluster configuration (--explain: with sources)', help: config.help((m) => m.CONFIG_HELP), run: config.run((m) => m.configCommand) },
  group('broker', 'write broker files (mosquitto.conf, ACL, passwords, client id bindings)', broker.help((m) => m.BROKER_HELP), broker.run((m) => m.brokerCommand), {
    mosquitto: 'mosquitto.conf, ACL, password file and client id bindings for the devices',
  }),
  group('pki', "Arteria's certificate authority: device, service and broker certificates, revocation (CRL)", pki.help((m) => m.PKI_HELP), pki.run((m) => m.pkiCommand), {
    init: 'create the CA and an empty CRL',
    issue: 'a certificate for a device, a service or a broker',
    revoke: "revoke a holder's certificates and rewrite the CRL",
    crl: 'reissue the CRL',
    list: 'certificates issued and their state',
  }),
  { name: 'plan', summary: 'workers needed for N devices (queueing model, capacity plan)', help: plan.help((m) => m.PLAN_HELP), run: plan.run((m) => m.planCommand) },
  { name: 'simulate', summary: 'a simulated fleet day under each scaling policy', help: simulate.help((m) => m.SIMULATE_HELP), run: simulate.run((m) => m.simulateCommand) },
  { name: 'loadtest', summary: 'simulated devices against a deployment, then an HTML and JSON report', help: loadtest.help((m) => m.LOADTEST_HELP), run: loadtest.run((m) => (argv) => m.loadtestCommand(argv)) },
  {
    name: 'devices',
    summary: 'list devices, show one, push a configuration to a gateway, tokens and revocation',
    help: devicesHelp,
    subcommands: [
      ...subs(devicesHelp, devices.run((m) => m.devicesCommand), {
        list: 'devices, gateway versions, last seen, config versions',
        show: 'status, desired and reported config of one device',
        configure: "push a desired config and wait for the gateway's report",
      }),
      ...subs(credentials.help((m) => m.DEVICE_CREDENTIALS_HELP), credentials.run((m) => m.deviceCredentialsCommand), {
        token: 'an expiring token for a device of an embedded installation',
        revoke: 'refuse one device, whatever credential it holds',
        reinstate: 'lift a revocation',
      }),
    ],
  },
  {
    name: 'serve-models',
    summary: 'serve ONNX models over KServe v2 HTTP (Triton-compatible repository)',
    help: serveModelsHelp,
    run: serveModelsRun,
    subcommands: subs(serveModelsHelp, serveModelsRun, { export: "write a Triton model repository for algorithms' models" }),
  },
  group('algorithm', 'write, test, evaluate, pack, sign, install and release algorithms', algorithm.help((m) => m.ALGORITHM_HELP), algorithm.run((m) => m.algorithmCommand), {
    init: 'a new algorithm package that passes its own tests',
    test: "contract, golden cases, determinism, limits, through the platform's runner",
    eval: 'metrics over the labelled eval set',
    pack: 'an immutable, content-addressed artifact with its SBOM',
    keygen: 'an Ed25519 key pair for signing artifacts',
    sign: 'sign an artifact',
    verify: 'check an artifact against trusted public keys',
    install: 'unpack an artifact where the platform loads algorithms',
    publish: "store an artifact in a deployment's artifact store (stage dev)",
    list: 'published versions with their stage and digest',
    promote: 'move a published version on: dev → validated → released',
    retire: 'withdraw a published version everywhere',
    shadow: "run a version in the shadow of a share of an algorithm's requests",
    'shadow-report': 'compare the shadow runs against the delivered results',
  }),
  group('audit', "check the ledger's hash chain, show a result's provenance", audit.help((m) => m.AUDIT_HELP), audit.run((m) => m.auditCommand), {
    verify: 'name every ledger record changed, removed or reordered (exit 1)',
    show: "a result's provenance from its chain records",
  }),
  group('dlq', 'dead-lettered tasks: list, show, replay through admission', dlq.help((m) => m.DLQ_HELP), dlq.run((m) => m.dlqCommand), {
    list: 'dead letters, newest first, with reason and delivery count',
    show: 'one dead letter: request, device, pinned version, reason, ledger state',
    replay: 'queue one (or --all) again through admission; exactly-once kept',
  }),
];

export const ARTERIA_PROGRAM: Program = {
  name: 'arteria',
  version: ARTERIA_VERSION,
  summary: 'cloud algorithms for imaging devices',
  commands: ARTERIA_COMMANDS,
  epilogue: 'Exit status: 0 ok, 1 failure, 2 usage (unknown command or option), 78 configuration (CONFIG_INVALID).',
};
