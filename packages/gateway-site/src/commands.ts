import { parseArgs } from 'node:util';
import type { Command, Program } from '@arteria/command';
import { ArteriaError } from '@arteria/protocol';
import { createGatewayLogger, GATEWAY_VERSION, gatewayLogLevel } from '@arteria/gateway';

const CONFIG_NOTE = `The config file: { "gateway": {...Gateway options}, "dicom": {...}, "results": {...}, "watchFolder": {...} }
(see docs/gateway.md). Default --config: /etc/arteria/gateway.json`;

const RUN_HELP = `arteria-gateway run --config <file>   run the gateway service (DICOM receiver, outbox, results on-site)
  SIGTERM or SIGINT stops it: the outbox keeps what is not yet answered.

${CONFIG_NOTE}`;

const DOCTOR_HELP = `arteria-gateway doctor --config <file>   check broker, object store, certificates, clock, disk, DICOM port
  --timeout-s <n>        per check (default 10)
  --min-free-gb <n>      outbox disk minimum (default 10)
  --json                 print the checks as JSON
  Exit status 1 when a check fails.
  The broker holds one session per device, so while the gateway runs the broker check
  reports the running gateway's own connection ({outboxPath}.status.json) instead of
  connecting; when it is stopped, the check connects once as the device and takes nothing
  from its session.

${CONFIG_NOTE}`;

const positive = (value: string, flag: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new ArteriaError('CONFIG_INVALID', `${flag} must be a non-negative number, got ${JSON.stringify(value)}`);
  return n;
};

async function doctor(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { config: { type: 'string', default: '/etc/arteria/gateway.json' }, 'timeout-s': { type: 'string', default: '10' }, 'min-free-gb': { type: 'string', default: '10' }, json: { type: 'boolean', default: false } },
  });
  // Loaded on use: `--help` and `--version` need neither the AWS SDK nor the DICOM stack.
  const [{ readServiceConfig }, { runDoctor }] = await Promise.all([import('./service/service-config.js'), import('./service/doctor.js')]);
  const config = await readServiceConfig(values.config);
  const checks = await runDoctor(config, {
    timeoutMs: positive(values['timeout-s'], '--timeout-s') * 1000,
    minFreeBytes: positive(values['min-free-gb'], '--min-free-gb') * 2 ** 30,
    maxClockSkewMs: 5_000,
    certificateWarnDays: 30,
  });
  if (values.json) process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
  else for (const c of checks) process.stdout.write(`${c.state.toUpperCase().padEnd(4)}  ${c.check.padEnd(22)} ${c.detail}\n`);
  return checks.some((c) => c.state === 'fail') ? 1 : 0;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: { config: { type: 'string', default: '/etc/arteria/gateway.json' } } });
  const [{ readServiceConfig }, { GatewayService }] = await Promise.all([import('./service/service-config.js'), import('./service/service.js')]);
  // The process's one logger; LOG_LEVEL filters it (default info).
  const service = new GatewayService(await readServiceConfig(values.config), createGatewayLogger({ level: gatewayLogLevel(process.env.LOG_LEVEL) }));
  await service.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await service.close();
  return 0;
}

/** Every `arteria-gateway` command: adding one is adding an entry. */
export const GATEWAY_COMMANDS: readonly Command[] = [
  { name: 'run', summary: 'run the gateway service (DICOM receiver, outbox, results on-site)', help: RUN_HELP, run },
  { name: 'doctor', summary: 'check broker, object store, certificates, clock, disk, DICOM port', help: DOCTOR_HELP, run: doctor },
];

export const GATEWAY_PROGRAM: Program = {
  name: 'arteria-gateway',
  version: GATEWAY_VERSION,
  summary: 'the Arteria edge gateway',
  commands: GATEWAY_COMMANDS,
  epilogue: `${CONFIG_NOTE}
Exit status: 0 ok, 1 failure, 2 usage, 78 configuration (CONFIG_INVALID: systemd does not restart on it).`,
};
