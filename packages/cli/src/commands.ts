import type { Command, Program } from '@arteria/command';
import { BROKER_HELP, brokerCommand } from './broker-command.js';
import { PKI_HELP, pkiCommand } from './pki-command.js';
import { CONFIG_HELP, configCommand } from './config-command.js';
import { DEVICES_HELP, devicesCommand } from './devices-command.js';
import { DEVICE_CREDENTIALS_HELP, deviceCredentialsCommand } from './device-credentials-command.js';
import { GATEWAY_HELP, gatewayCommand } from './gateway-command.js';
import { PLAN_HELP, planCommand } from './plan-command.js';
import { ROLES_HELP, roleCommand } from './role-command.js';
import { SERVE_MODELS_HELP, serveModelsCommand } from './serve-models-command.js';
import { SERVICE_ROLES_HELP, serviceRoleCommand } from './service-role-command.js';
import { SIMULATE_HELP, simulateCommand } from './simulate-command.js';
import { UP_HELP, up } from './up.js';
import { AUDIT_HELP, auditCommand } from './audit-command.js';
import { DLQ_HELP, dlqCommand } from './dlq-command.js';
import { LOADTEST_HELP, loadtestCommand } from './loadtest/loadtest-command.js';
import { STORE_HELP, storeCommand } from './store-command.js';
import { CLUSTER_HELP, clusterCommand } from './cluster/command.js';
import { ALGORITHM_COMMAND } from './algorithm-command.js';
import { ARTERIA_VERSION } from './version.js';

type Run = (argv: string[]) => Promise<number>;

/**
 * Subcommands (name: summary) that one function runs, taking the subcommand's name as its
 * first word; they share their parent's help.
 */
const subs = (help: string, run: Run, summaries: Readonly<Record<string, string>>): Command[] =>
  Object.entries(summaries).map(([name, summary]) => ({ name, summary, help, run: (argv) => run([name, ...argv]) }));

/** A command made only of subcommands that one function runs. */
const group = (name: string, summary: string, help: string, run: Run, summaries: Readonly<Record<string, string>>): Command => ({
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
  { name: 'up', summary: 'the whole platform in one process, with a simulated fleet', help: UP_HELP, run: up },
  group('gateway', 'the edge gateway (send runs, watch a folder)', GATEWAY_HELP, gatewayCommand, {
    send: 'send runs, wait for and print results',
    run: 'long-running: send every run that lands in the --watch folder',
    sample: 'write a synthetic XA run (no patient data) to try a platform with',
  }),
  { name: 'ingest', summary: 'cluster role: admit requests from an MQTT 5 broker', help: ROLES_HELP, run: (argv) => roleCommand('ingest', argv) },
  { name: 'worker', summary: 'cluster role: run algorithms on queued tasks', help: ROLES_HELP, run: (argv) => roleCommand('worker', argv) },
  { name: 'autoscaler', summary: 'cluster role: worker count from the queueing model (KEDA or Kubernetes)', help: SERVICE_ROLES_HELP, run: (argv) => serviceRoleCommand('autoscaler', argv) },
  { name: 'dashboard', summary: "cluster role: the operator's page on the shared stores", help: SERVICE_ROLES_HELP, run: (argv) => serviceRoleCommand('dashboard', argv) },
  { name: 'store', summary: 'an S3-API object store (local disk) as its own process', help: STORE_HELP, run: storeCommand },
  {
    name: 'cluster',
    summary: 'a local cluster of separate processes: up, down, status, tenants, devices',
    help: CLUSTER_HELP,
    subcommands: [
      ...subs(CLUSTER_HELP, clusterCommand, {
        up: 'start every process of a cluster, each on its own port',
        down: 'stop every process `cluster up` started',
        status: 'each process: pid, port, ready or not',
      }),
      group('tenant', 'tenants of the cluster', CLUSTER_HELP, (argv) => clusterCommand(['tenant', ...argv]), { add: 'a tenant with its own provisioning secret' }),
      group('device', 'devices of the cluster', CLUSTER_HELP, (argv) => clusterCommand(['device', ...argv]), {
        add: 'a broker account, its token and its gateway configuration',
        'rotate-token': 'a new token for one device',
        revoke: 'refuse one device, whatever credential it holds',
        reinstate: 'lift a revocation, with a new token',
      }),
    ],
  },
  { name: 'config', summary: 'print the effective cluster configuration (--explain: with sources)', help: CONFIG_HELP, run: configCommand },
  group('broker', 'write broker files (mosquitto.conf, ACL, passwords, client id bindings)', BROKER_HELP, brokerCommand, {
    mosquitto: 'mosquitto.conf, ACL, password file and client id bindings for the devices',
  }),
  group('pki', "Arteria's certificate authority: device, service and broker certificates, revocation (CRL)", PKI_HELP, pkiCommand, {
    init: 'create the CA and an empty CRL',
    issue: 'a certificate for a device, a service or a broker',
    revoke: "revoke a holder's certificates and rewrite the CRL",
    crl: 'reissue the CRL',
    list: 'certificates issued and their state',
  }),
  { name: 'plan', summary: 'workers needed for N devices (queueing model, capacity plan)', help: PLAN_HELP, run: planCommand },
  { name: 'simulate', summary: 'a simulated fleet day under each scaling policy', help: SIMULATE_HELP, run: simulateCommand },
  { name: 'loadtest', summary: 'simulated devices against a deployment, then an HTML and JSON report', help: LOADTEST_HELP, run: (argv) => loadtestCommand(argv) },
  {
    name: 'devices',
    summary: 'list devices, show one, push a configuration to a gateway, tokens and revocation',
    help: DEVICES_HELP,
    subcommands: [
      ...subs(DEVICES_HELP, devicesCommand, {
        list: 'devices, gateway versions, last seen, config versions',
        show: 'status, desired and reported config of one device',
        configure: "push a desired config and wait for the gateway's report",
      }),
      ...subs(DEVICE_CREDENTIALS_HELP, deviceCredentialsCommand, {
        token: 'an expiring token for a device of an embedded installation',
        revoke: 'refuse one device, whatever credential it holds',
        reinstate: 'lift a revocation',
      }),
    ],
  },
  {
    name: 'serve-models',
    summary: 'serve ONNX models over KServe v2 HTTP (Triton-compatible repository)',
    help: SERVE_MODELS_HELP,
    run: serveModelsCommand,
    subcommands: subs(SERVE_MODELS_HELP, serveModelsCommand, { export: "write a Triton model repository for algorithms' models" }),
  },
  ALGORITHM_COMMAND,
  group('audit', "check the ledger's hash chain, show a result's provenance", AUDIT_HELP, auditCommand, {
    verify: 'name every ledger record changed, removed or reordered (exit 1)',
    show: "a result's provenance from its chain records",
  }),
  group('dlq', 'dead-lettered tasks: list, show, replay through admission', DLQ_HELP, dlqCommand, {
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
