import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FolderWatcher, Gateway, createGatewayLogger, gatewayLogLevel, groupFolderRuns, listFolderFiles, looksLikeRun, writeSeriesRun, type FolderRun, type GatewayLogger, type GatewayResult } from '@arteria/gateway';
import { readServiceConfig } from '@arteria/gateway-site';
import { EMBEDDED_S3_CREDENTIALS } from '@arteria/engine-s3';
import { usageError } from '@arteria/command';
import { ArteriaError, deviceToken, epochNow, toArteriaError } from '@arteria/protocol';
import { describeResult } from './describe-result.js';
import { writeSampleRun } from './sample-run.js';
import { DEFAULT_TENANT, loadOrCreateSecrets } from './secrets.js';

export const GATEWAY_HELP = `arteria gateway send <file|folder> [options]   send runs, wait for and print results
arteria gateway send --follow <file> [options]   send a run while it is still being written: segments
                        go up as frames arrive; partial results print as they come
  --frames-per-segment <n>  (default 10)   --stable-ms <ms>  how long the file may stop growing (default 10000)
  --end-when-stable     a file that stops growing ends the run with the frames it has (default: RUN_INCOMPLETE)
arteria gateway run --watch <folder> [options]   long-running: send every run that lands in the folder
arteria gateway sample <file.dcm> [--frames 30] [--size 128] [--seed 1]   write a synthetic XA run to try it with

Connection (defaults: the embedded platform of --data-dir on this machine):
  --config <file>       a device's gateway configuration ({"gateway": {...}}, as
                        \`arteria cluster device add\` writes it); --algorithm and --outbox still apply
  --data-dir <path>     embedded installation to use (default .arteria)
  --mqtt-url <url>      broker URL (default mqtt://127.0.0.1:18830)
  --s3-endpoint <url>   S3 API endpoint (default http://127.0.0.1:18831)
  --bucket <name>       bucket for runs (default arteria-runs)
  --tenant <id>         (default demo)   --device <id>  (default cli)
  --token <token>       device token (default: derived from the embedded tenant secret)
  --outbox <path>       outbox file (default <data-dir>/gateway/<device>.db)
  --algorithm <spec>    name@range (default contrast-injection@^1)
  --json                print results as JSON`;

async function openGateway(values: Record<string, string | boolean | undefined>, logger: GatewayLogger): Promise<Gateway> {
  if (typeof values.config === 'string') {
    // A provisioned device's file (\`arteria cluster device add\` writes one): its gateway section, flags on top.
    const file = await readServiceConfig(values.config);
    const gateway = new Gateway({
      ...file.gateway,
      ...(typeof values.algorithm === 'string' ? { algorithm: values.algorithm } : {}),
      ...(typeof values.outbox === 'string' ? { outboxPath: values.outbox } : {}),
    }, { logger });
    await gateway.start();
    return gateway;
  }
  const str = (key: string, fallback: string): string => {
    const v = values[key];
    return typeof v === 'string' ? v : fallback;
  };
  const dataDir = path.resolve(str('data-dir', '.arteria'));
  const tenant = str('tenant', DEFAULT_TENANT);
  const device = str('device', 'cli');
  let token = typeof values.token === 'string' ? values.token : undefined;
  if (token === undefined) {
    const secret = (await loadOrCreateSecrets(dataDir)).tenants[tenant];
    if (secret === undefined) throw new ArteriaError('CONFIG_INVALID', `no secret for tenant ${tenant} in ${dataDir}; pass --token`);
    token = deviceToken(secret, { tenant, device });
  }
  const gateway = new Gateway({
    tenant,
    device,
    token,
    mqttUrl: str('mqtt-url', 'mqtt://127.0.0.1:18830'),
    s3: { endpoint: str('s3-endpoint', 'http://127.0.0.1:18831'), bucket: str('bucket', 'arteria-runs'), region: EMBEDDED_S3_CREDENTIALS.region },
    outboxPath: str('outbox', path.join(dataDir, 'gateway', `${device}.db`)),
    algorithm: str('algorithm', 'contrast-injection@^1'),
    resendIntervalMs: 5_000,
  }, { logger });
  await gateway.start();
  return gateway;
}

const OPTIONS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  'mqtt-url': { type: 'string' },
  's3-endpoint': { type: 'string' },
  bucket: { type: 'string' },
  tenant: { type: 'string' },
  device: { type: 'string' },
  token: { type: 'string' },
  outbox: { type: 'string' },
  algorithm: { type: 'string' },
  json: { type: 'boolean', default: false },
  watch: { type: 'string' },
  follow: { type: 'boolean', default: false },
  'frames-per-segment': { type: 'string' },
  'stable-ms': { type: 'string' },
  'end-when-stable': { type: 'boolean', default: false },
} as const;

export async function gatewayCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'sample') return writeSampleRun(rest);
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
  if (sub === 'send' && values.follow === true) return sendFollow(values, positionals);
  if (sub === 'send') return send(values, positionals);
  if (sub === 'run') return run(values);
  throw usageError(`unknown gateway command ${JSON.stringify(sub ?? '')}`);
}

async function send(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number> {
  if (positionals.length === 0) throw usageError('name a file or folder to send');
  const files: string[] = [];
  /** How a file is named in the answers: its path within the folder given, or its own name. */
  const labels = new Map<string, string>();
  let skipped = 0;
  for (const p of positionals) {
    const info = await stat(p);
    if (info.isDirectory()) {
      // Subfolders too (a media export is DICOM/{patient}/{study}/...). Not DICOMDIR, and not
      // what is plainly no run: the viewer, README and autorun files that come on the same disc.
      for (const name of await listFolderFiles(p, { followFileLinks: true })) {
        if (await looksLikeRun(path.join(p, name))) {
          files.push(path.join(p, name));
          labels.set(path.join(p, name), name);
        } else skipped += 1;
      }
    } else files.push(p);
  }
  if (skipped > 0) process.stderr.write(`skipped ${skipped} file${skipped === 1 ? '' : 's'} that ${skipped === 1 ? 'is' : 'are'} neither named .dcm nor DICOM Part 10\n`);
  if (files.length === 0) throw usageError(`no DICOM files in ${positionals.join(', ')}`);
  // Single frames of one series (a run exported frame by frame) go as the one run they make.
  const runs = await groupFolderRuns(files);
  // One-shot sends report on stdout and stderr themselves; the log shows warnings and worse.
  const gateway = await openGateway(values, createGatewayLogger({ level: gatewayLogLevel(process.env.LOG_LEVEL, 'warn') }));
  let failures = 0;
  const askedAt = epochNow();
  try {
    const outcomes = await Promise.allSettled(runs.map((run) => sendRun(gateway, run)));
    outcomes.forEach((outcome, i) => {
      const run = runs[i]!;
      const label = run.kind === 'file' ? (labels.get(run.path) ?? path.basename(run.path)) : `series ${run.seriesInstanceUid} (${run.paths.length} single frames)`;
      if (outcome.status === 'fulfilled') {
        if (outcome.value.status !== 'ok') failures += 1;
        process.stdout.write(values.json ? `${JSON.stringify(outcome.value, null, 2)}\n` : `${describeResult(label, outcome.value, askedAt)}\n`);
      } else {
        failures += 1;
        const error = toArteriaError(outcome.reason);
        process.stderr.write(`${run.kind === 'file' ? run.path : label}: ${error.code}: ${error.message}\n`);
      }
    });
  } finally {
    await gateway.close();
  }
  return failures === 0 ? 0 : 1;
}

/**
 * A file as it is; a series' frames made into one run file beside the outbox (named after its
 * frames, so sending them again joins the same run), removed once answered. Frames that cannot
 * make one run are refused together, with the reason.
 */
async function sendRun(gateway: Gateway, run: FolderRun): Promise<GatewayResult> {
  if (run.kind === 'file') return gateway.send(path.resolve(run.path));
  const file = await writeSeriesRun(run.paths.map((p) => path.resolve(p)), `${gateway.config.outboxPath}.series`);
  let result: GatewayResult;
  try {
    result = await gateway.send(file);
  } catch (err) {
    // Still in the outbox (the gateway closed, or the answer is late): the next start goes on from the file.
    const code = toArteriaError(err).code;
    if (code !== 'GATEWAY_NOT_RUNNING' && code !== 'RESULT_TIMEOUT') await rm(file, { force: true });
    throw err;
  }
  await rm(file, { force: true });
  return result;
}

/** A positive integer flag, or undefined when absent. */
function intFlag(values: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const raw = values[name];
  if (typeof raw !== 'string') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw usageError(`--${name} needs a positive integer`);
  return n;
}

async function sendFollow(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number> {
  const [file, ...more] = positionals;
  if (file === undefined || more.length > 0) throw usageError('send --follow takes exactly one file');
  const framesPerSegment = intFlag(values, 'frames-per-segment');
  const stableAfterMs = intFlag(values, 'stable-ms');
  const gateway = await openGateway(values, createGatewayLogger({ level: gatewayLogLevel(process.env.LOG_LEVEL, 'warn') }));
  const name = path.basename(file);
  try {
    const result = await gateway.sendFollow(path.resolve(file), {
      ...(framesPerSegment === undefined ? {} : { framesPerSegment }),
      ...(stableAfterMs === undefined ? {} : { stableAfterMs }),
      endWhenStable: values['end-when-stable'] === true,
      onPartial: (partial) => {
        const line = values.json ? JSON.stringify(partial) : `${name} <- partial #${partial.seq}: ${partial.event.type} at frame ${partial.event.frame} (${partial.framesSeen} frames seen)`;
        process.stdout.write(`${line}\n`);
      },
    });
    process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${describeResult(name, result)}\n`);
    return result.status === 'ok' ? 0 : 1;
  } catch (err) {
    const error = toArteriaError(err);
    process.stderr.write(`${file}: ${error.code}: ${error.message}\n`);
    return 1;
  } finally {
    await gateway.close();
  }
}

async function run(values: Record<string, string | boolean | undefined>): Promise<number> {
  if (typeof values.watch !== 'string') throw usageError('gateway run needs --watch <folder>');
  // The process's one logger; LOG_LEVEL filters it (default info).
  const logger = createGatewayLogger({ level: gatewayLogLevel(process.env.LOG_LEVEL) });
  const gateway = await openGateway(values, logger);
  // Results under the names the site knows (the gateway's own event names de-identified copies).
  const startedAt = epochNow();
  const onResult = ({ name, result }: { name: string; result: GatewayResult }): boolean => process.stdout.write(`${describeResult(name, result, startedAt)}\n`);
  const watcher = new FolderWatcher(gateway, { folder: path.resolve(values.watch), logger, onResult });
  await watcher.start();
  process.stderr.write(`Watching ${values.watch} for runs; Ctrl-C stops.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await watcher.close();
  await gateway.close();
  return 0;
}
