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

/** A subcommand whose parent's function takes the subcommand's name as its first word. */
const sub = (name: string, summary: string, help: string, run: (argv: string[]) => Promise<number>): Command => ({
  name,
  summary,
  help,
  run: (argv) => run([name, ...argv]),
});

/**
 * Every `arteria` command. Adding a command is adding an entry here; `--help`,
 * `--version`, exit statuses and the help walk test follow from the table.
 */
export const ARTERIA_COMMANDS: readonly Command[] = [
  { name: 'up', summary: 'the whole platform in one process, with a simulated fleet', help: UP_HELP, run: up },
  {
    name: 'gateway',
    summary: 'the edge gateway (send runs, watch a folder)',
    help: GATEWAY_HELP,
    subcommands: [
      sub('send', 'send runs, wait for and print results', GATEWAY_HELP, gatewayCommand),
      sub('run', 'long-running: send every run that lands in the --watch folder', GATEWAY_HELP, gatewayCommand),
      sub('sample', 'write a synthetic XA run (no patient data) to try a platform with', GATEWAY_HELP, gatewayCommand),
    ],
  },
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
      sub('up', 'start every process of a cluster, each on its own port', CLUSTER_HELP, clusterCommand),
      sub('down', 'stop every process `cluster up` started', CLUSTER_HELP, clusterCommand),
      sub('status', 'each process: pid, port, ready or not', CLUSTER_HELP, clusterCommand),
      {
        name: 'tenant',
        summary: 'tenants of the cluster',
        help: CLUSTER_HELP,
        subcommands: [{ name: 'add', summary: 'a tenant with its own provisioning secret', help: CLUSTER_HELP, run: (argv) => clusterCommand(['tenant', 'add', ...argv]) }],
      },
      {
        name: 'device',
        summary: 'devices of the cluster',
        help: CLUSTER_HELP,
        subcommands: [
          { name: 'add', summary: 'a broker account, its token and its gateway configuration', help: CLUSTER_HELP, run: (argv) => clusterCommand(['device', 'add', ...argv]) },
          { name: 'rotate-token', summary: 'a new token for one device', help: CLUSTER_HELP, run: (argv) => clusterCommand(['device', 'rotate-token', ...argv]) },
          { name: 'revoke', summary: 'refuse one device, whatever credential it holds', help: CLUSTER_HELP, run: (argv) => clusterCommand(['device', 'revoke', ...argv]) },
          { name: 'reinstate', summary: 'lift a revocation, with a new token', help: CLUSTER_HELP, run: (argv) => clusterCommand(['device', 'reinstate', ...argv]) },
        ],
      },
    ],
  },
  { name: 'config', summary: 'print the effective cluster configuration (--explain: with sources)', help: CONFIG_HELP, run: configCommand },
  {
    name: 'broker',
    summary: 'write broker files (mosquitto.conf, ACL, passwords, client id bindings)',
    help: BROKER_HELP,
    subcommands: [sub('mosquitto', 'mosquitto.conf, ACL, password file and client id bindings for the devices', BROKER_HELP, brokerCommand)],
  },
  {
    name: 'pki',
    summary: "Arteria's certificate authority: device, service and broker certificates, revocation (CRL)",
    help: PKI_HELP,
    subcommands: [
      sub('init', 'create the CA and an empty CRL', PKI_HELP, pkiCommand),
      sub('issue', 'a certificate for a device, a service or a broker', PKI_HELP, pkiCommand),
      sub('revoke', "revoke a holder's certificates and rewrite the CRL", PKI_HELP, pkiCommand),
      sub('crl', 'reissue the CRL', PKI_HELP, pkiCommand),
      sub('list', 'certificates issued and their state', PKI_HELP, pkiCommand),
    ],
  },
  { name: 'plan', summary: 'workers needed for N devices (queueing model, capacity plan)', help: PLAN_HELP, run: planCommand },
  { name: 'simulate', summary: 'a simulated fleet day under each scaling policy', help: SIMULATE_HELP, run: simulateCommand },
  { name: 'loadtest', summary: 'simulated devices against a deployment, then an HTML and JSON report', help: LOADTEST_HELP, run: (argv) => loadtestCommand(argv) },
  {
    name: 'devices',
    summary: 'list devices, show one, push a configuration to a gateway, tokens and revocation',
    help: DEVICES_HELP,
    subcommands: [
      sub('list', 'devices, gateway versions, last seen, config versions', DEVICES_HELP, devicesCommand),
      sub('show', 'status, desired and reported config of one device', DEVICES_HELP, devicesCommand),
      sub('configure', "push a desired config and wait for the gateway's report", DEVICES_HELP, devicesCommand),
      sub('token', 'an expiring token for a device of an embedded installation', DEVICE_CREDENTIALS_HELP, deviceCredentialsCommand),
      sub('revoke', 'refuse one device, whatever credential it holds', DEVICE_CREDENTIALS_HELP, deviceCredentialsCommand),
      sub('reinstate', 'lift a revocation', DEVICE_CREDENTIALS_HELP, deviceCredentialsCommand),
    ],
  },
  {
    name: 'serve-models',
    summary: 'serve ONNX models over KServe v2 HTTP (Triton-compatible repository)',
    help: SERVE_MODELS_HELP,
    run: serveModelsCommand,
    subcommands: [sub('export', "write a Triton model repository for algorithms' models", SERVE_MODELS_HELP, serveModelsCommand)],
  },
  ALGORITHM_COMMAND,
  {
    name: 'audit',
    summary: "check the ledger's hash chain, show a result's provenance",
    help: AUDIT_HELP,
    subcommands: [
      sub('verify', 'name every ledger record changed, removed or reordered (exit 1)', AUDIT_HELP, auditCommand),
      sub('show', "a result's provenance from its chain records", AUDIT_HELP, auditCommand),
    ],
  },
  {
    name: 'dlq',
    summary: 'dead-lettered tasks: list, show, replay through admission',
    help: DLQ_HELP,
    subcommands: [
      sub('list', 'dead letters, newest first, with reason and delivery count', DLQ_HELP, dlqCommand),
      sub('show', 'one dead letter: request, device, pinned version, reason, ledger state', DLQ_HELP, dlqCommand),
      sub('replay', 'queue one (or --all) again through admission; exactly-once kept', DLQ_HELP, dlqCommand),
    ],
  },
];

export const ARTERIA_PROGRAM: Program = {
  name: 'arteria',
  version: ARTERIA_VERSION,
  summary: 'cloud algorithms for imaging devices',
  commands: ARTERIA_COMMANDS,
  epilogue: 'Exit status: 0 ok, 1 failure, 2 usage (unknown command or option), 78 configuration (CONFIG_INVALID).',
};
