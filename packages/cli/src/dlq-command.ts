import { existsSync } from 'node:fs';
import path from 'node:path';
import { usageError } from '@arteria/command';
import { ArteriaError } from '@arteria/protocol';
import { AlgorithmRegistry } from '@arteria/worker';
import { DeadLetterDesk, EntitlementPolicy, type DeadLetterView, type ReplayOutcome } from '@arteria/ingest';
import { openSharedStores } from '@arteria/platform';
import { int } from './args.js';
import { loadConfig } from './config/load.js';
import { algorithmDirs } from './role-command.js';

export const DLQ_HELP = `arteria dlq list [options] [config flags]          dead-lettered tasks of every worker pool, newest first: task id,
                                                  pool, when, deliveries,
                                                  tenant/device, algorithm, reason
arteria dlq show <task-id> [options] [config flags]
                                                  one dead letter: the request, its inputs, the pinned version,
                                                  the reason and what the ledger holds for it
arteria dlq replay <task-id>|--all [options] [config flags]
                                                  queue again through admission (entitlements, registry: the
                                                  version admission pins now); a request whose result is in the
                                                  ledger is not run again, only cleared. The letter is removed.
  --limit <n>     list: at most n letters (default 100)
  --json          print JSON
  (config flags as for the platform roles: --data-dir .arteria for an embedded installation, or
   --config cluster.yaml for a cluster; the queue engine (SQLite or NATS JetStream), the ledger,
   the algorithm folders and ingest.entitlementsFile come from there)`;

interface DlqFlags {
  json: boolean;
  all: boolean;
  limit: number;
  positionals: string[];
  configArgv: string[];
}

/** Our flags and positionals; everything from the first other `--flag` on is configuration. */
function parseDlqArgs(args: string[]): DlqFlags {
  const flags: DlqFlags = { json: false, all: false, limit: 100, positionals: [], configArgv: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--json') flags.json = true;
    else if (arg === '--all') flags.all = true;
    else if (arg === '--limit') {
      const value = args[++i];
      if (value === undefined) throw usageError('--limit needs a number');
      flags.limit = int(value, '--limit');
    } else if (arg.startsWith('--')) {
      // A config flag and, unless written --key=value, its value.
      flags.configArgv.push(arg);
      const next = args[i + 1];
      if (!arg.includes('=') && next !== undefined && !next.startsWith('--')) flags.configArgv.push(args[++i] ?? '');
    } else flags.positionals.push(arg);
  }
  return flags;
}

export async function dlqCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'list' && sub !== 'show' && sub !== 'replay') throw usageError(`unknown dlq command ${JSON.stringify(sub ?? '')}`);
  const flags = parseDlqArgs(rest);
  const [id, extra] = flags.positionals;
  if (extra !== undefined) throw usageError(`unexpected argument ${JSON.stringify(extra)}`);
  if (sub === 'show' && id === undefined) throw usageError('dlq show needs a task id (see arteria dlq list)');
  if (sub === 'replay' && (id === undefined) === !flags.all) throw usageError('dlq replay needs a task id or --all (not both)');
  if (sub === 'list' && id !== undefined) throw usageError(`dlq list takes no task id, got ${JSON.stringify(id)}`);
  const { config } = await loadConfig({ argv: flags.configArgv, env: process.env });
  if (config.queue.kind === 'sqlite') {
    const file = config.queue.path === '' ? path.join(path.resolve(config.dataDir), 'platform.db') : path.resolve(config.queue.path);
    if (!existsSync(file)) throw new ArteriaError('CONFIG_INVALID', `no queue at ${file} (set --data-dir, queue.path, or --config for a cluster)`);
  }
  const stores = await openSharedStores(config);
  try {
    const desk = new DeadLetterDesk({
      queues: stores.queues,
      ledger: stores.ledger,
      // Only replay admits; list and show need neither the registry nor the entitlements.
      ...(sub === 'replay'
        ? {
            admission: {
              algorithms: await AlgorithmRegistry.load(algorithmDirs(config).map((d) => path.resolve(d))),
              bucket: config.s3.bucket,
              entitlements: await EntitlementPolicy.load(config.ingest.entitlementsFile),
            },
          }
        : {}),
    });
    const print = (value: unknown, text: string): void => {
      process.stdout.write(flags.json ? `${JSON.stringify(value, null, 2)}\n` : text);
    };
    if (sub === 'list') {
      const letters = await desk.list(flags.limit);
      print(letters, formatList(letters));
      return 0;
    }
    if (sub === 'show') {
      const letter = await desk.show(id ?? '');
      print(letter, formatShow(letter));
      return 0;
    }
    if (id !== undefined) {
      const outcome = await desk.replay(id);
      print(outcome, `${formatOutcome(outcome)}\n`);
      return 0;
    }
    const { outcomes, refused } = await desk.replayAll();
    const lines = [...outcomes.map(formatOutcome), ...refused.map((r) => `${r.taskId}  refused (${r.code}): ${r.message}`)];
    print({ outcomes, refused }, `${lines.length === 0 ? 'no dead letters' : lines.join('\n')}\n`);
    return refused.length === 0 ? 0 : 1;
  } finally {
    await stores.close();
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

function formatList(letters: DeadLetterView[]): string {
  if (letters.length === 0) return 'no dead letters\n';
  const rows = letters.map((l) => [
    l.taskId,
    l.pool,
    iso(l.at),
    String(l.deliveries),
    l.request ? `${l.request.tenant}/${l.request.device}` : '?',
    l.request ? `${l.request.algorithm}${l.pinned ? ` (${l.pinned.version})` : ''}` : 'unreadable',
    l.reason.length > 80 ? `${l.reason.slice(0, 79)}…` : l.reason,
  ]);
  const header = ['TASK', 'POOL', 'DEAD-LETTERED', 'DELIVERIES', 'DEVICE', 'ALGORITHM', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return `${[header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`;
}

function formatShow(l: DeadLetterView): string {
  const lines = [`task          ${l.taskId}`, `pool          ${l.pool}`, `reason        ${l.reason}`, `deliveries    ${l.deliveries}`, `queued        ${iso(l.enqueuedAt)}`, `dead-lettered ${iso(l.at)}`];
  if (l.unreadable !== undefined) lines.push(`task body     ${l.unreadable}`);
  if (l.request) {
    lines.push(`request       ${l.request.id}`, `device        ${l.request.tenant}/${l.request.device}`, `algorithm     ${l.request.algorithm}`);
    if (l.pinned) lines.push(`pinned        ${l.pinned.name} ${l.pinned.version}  ${l.pinned.digest}`);
    lines.push(`instance      ${l.request.instanceUid}`);
    for (const input of l.request.inputs) lines.push(`input         ${input.uri}  sha256:${input.sha256}  ${input.size} bytes`);
  }
  if (l.ledger === undefined) lines.push('ledger        no entry');
  else if (l.ledger.state === 'completed') lines.push(`ledger        completed: ${l.ledger.status}${l.ledger.errorCode ? ` (${l.ledger.errorCode})` : ''}; a replay clears the letter without running it again`);
  else if (l.ledger.state === 'tampered') lines.push(`ledger        TAMPERED: ${l.ledger.message}`);
  else lines.push('ledger        accepted, no result yet; a replay runs it');
  return `${lines.join('\n')}\n`;
}

function formatOutcome(o: ReplayOutcome): string {
  return o.status === 'replayed'
    ? `${o.taskId}  replayed as task ${o.newTaskId} (${o.algorithm.name} ${o.algorithm.version}), request ${o.requestId}`
    : `${o.taskId}  already completed (${o.result}), request ${o.requestId}: not run again, letter cleared`;
}
