#!/usr/bin/env node
// The AWS SDK is pinned to a release that supports Node 20; its notice about later releases
// would only confuse operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { toArteriaError } from '@arteria/protocol';
import { GATEWAY_HELP, gatewayCommand } from './gateway-command.js';
import { UP_HELP, up } from './up.js';
import { ROLES_HELP, roleCommand } from './role-command.js';
import { SERVICE_ROLES_HELP, serviceRoleCommand } from './service-role-command.js';
import { CONFIG_HELP, configCommand } from './config-command.js';
import { BROKER_HELP, brokerCommand } from './broker-command.js';
import { PLAN_HELP, planCommand } from './plan-command.js';
import { SIMULATE_HELP, simulateCommand } from './simulate-command.js';
import { DEVICES_HELP, devicesCommand } from './devices-command.js';
import { SERVE_MODELS_HELP, serveModelsCommand } from './serve-models-command.js';

const HELP = `arteria: cloud algorithms for imaging devices

  arteria up          the whole platform in one process, with a simulated fleet
  arteria gateway     the edge gateway (send runs, watch a folder)
  arteria ingest      cluster role: admit requests from an MQTT 5 broker
  arteria worker      cluster role: run algorithms on queued tasks
  arteria autoscaler  cluster role: worker count from the queueing model (KEDA or Kubernetes)
  arteria dashboard   cluster role: the operator's page on the shared stores
  arteria config      print the effective cluster configuration (--explain: with sources)
  arteria broker      write broker files (mosquitto.conf, ACL, passwords)
  arteria plan        workers needed for N devices (queueing model, capacity plan)
  arteria simulate    a simulated fleet day under each scaling policy
  arteria devices     list devices, show one, push a configuration to a gateway
  arteria serve-models  serve ONNX models over KServe v2 HTTP (Triton-compatible repository)

${UP_HELP}

${GATEWAY_HELP}

${ROLES_HELP}

${SERVICE_ROLES_HELP}

${CONFIG_HELP}

${BROKER_HELP}

${PLAN_HELP}

${SIMULATE_HELP}

${DEVICES_HELP}

${SERVE_MODELS_HELP}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return up(rest);
    case 'gateway':
      return gatewayCommand(rest);
    case 'ingest':
    case 'worker':
      return roleCommand(command, rest);
    case 'autoscaler':
    case 'dashboard':
      return serviceRoleCommand(command, rest);
    case 'config':
      return configCommand(rest);
    case 'broker':
      return brokerCommand(rest);
    case 'plan':
      return planCommand(rest);
    case 'simulate':
      return simulateCommand(rest);
    case 'devices':
      return devicesCommand(rest);
    case 'serve-models':
      return serveModelsCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${HELP}\n`);
      return 0;
    default:
      process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${HELP}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // A mistyped flag is a configuration error, not a platform fault.
    const parseError = typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS');
    const error = toArteriaError(err, parseError ? 'CONFIG_INVALID' : 'INTERNAL');
    process.stderr.write(`arteria: ${error.code}: ${error.message}\n`);
    process.exit(1);
  },
);
