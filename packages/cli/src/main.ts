#!/usr/bin/env node
// The AWS SDK is pinned to a release that supports Node 20; its notice about later releases
// would only confuse operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { toArteriaError } from '@arteria/protocol';
import { GATEWAY_HELP, gatewayCommand } from './gateway-command.js';
import { UP_HELP, up } from './up.js';

const HELP = `arteria: cloud algorithms for imaging devices

  arteria up          the whole platform in one process, with a simulated fleet
  arteria gateway     the edge gateway (send runs, watch a folder)

${UP_HELP}

${GATEWAY_HELP}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return up(rest);
    case 'gateway':
      return gatewayCommand(rest);
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
    const error = toArteriaError(err);
    process.stderr.write(`arteria: ${error.code}: ${error.message}\n`);
    process.exit(1);
  },
);
