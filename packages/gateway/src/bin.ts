#!/usr/bin/env node
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { parseArgs } from 'node:util';
import { ArteriaError, toArteriaError } from '@arteria/protocol';
import { stderrLogger } from './log.js';
import { runDoctor } from './service/doctor.js';
import { GatewayService } from './service/service.js';
import { readServiceConfig } from './service/service-config.js';
import { GATEWAY_VERSION } from './version.js';

const HELP = `arteria-gateway ${GATEWAY_VERSION}: the Arteria edge gateway

  arteria-gateway run --config <file>      run the gateway service (DICOM receiver, outbox, results on-site)
  arteria-gateway doctor --config <file>   check broker, object store, certificates, clock, disk, DICOM port
      --timeout-s <n>        per check (default 10)
      --min-free-gb <n>      outbox disk minimum (default 10)
      --json                 print the checks as JSON

The config file: { "gateway": {...Gateway options}, "dicom": {...}, "results": {...}, "watchFolder": {...} }
(see docs/gateway.md). Default --config: /etc/arteria/gateway.json`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string', default: '/etc/arteria/gateway.json' }, 'timeout-s': { type: 'string', default: '10' }, 'min-free-gb': { type: 'string', default: '10' }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  if (command === 'doctor') {
    const config = await readServiceConfig(values.config);
    const checks = await runDoctor(config, {
      timeoutMs: Number(values['timeout-s']) * 1000,
      minFreeBytes: Number(values['min-free-gb']) * 2 ** 30,
      maxClockSkewMs: 5_000,
      certificateWarnDays: 30,
    });
    if (values.json) process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
    else for (const c of checks) process.stdout.write(`${c.state.toUpperCase().padEnd(4)}  ${c.check.padEnd(22)} ${c.detail}\n`);
    return checks.some((c) => c.state === 'fail') ? 1 : 0;
  }
  if (command === 'run') {
    const service = new GatewayService(await readServiceConfig(values.config), stderrLogger);
    await service.start();
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await service.close();
    return 0;
  }
  if (command === undefined || command === 'help' || command === '--help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  throw new ArteriaError('CONFIG_INVALID', `unknown command ${JSON.stringify(command)}\n\n${HELP}`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const error = toArteriaError(err);
    process.stderr.write(`arteria-gateway: ${error.code}: ${error.message}\n`);
    process.exit(1);
  },
);
