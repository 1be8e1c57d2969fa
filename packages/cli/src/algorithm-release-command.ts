import { usageError, type CommandContext } from '@arteria/command';
import { writeFile } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';
import { SHADOW_FORMAT, formatShadowReport, readPrivateKey, shadowReport, signShadowPlan, type ArtifactStore, type ReleaseStage } from '@arteria/worker';
import { artifactStoreClient } from '@arteria/platform';
import { loadConfig } from './config/load.js';

export const RELEASE_HELP = `arteria algorithm publish <artifact> [--key <prefix>.key] [--to <deployment config>]
                                   stores the artifact (and <artifact>.sig.json) in the deployment's
                                   artifact store, stage dev; no image is rebuilt
arteria algorithm list [--json] [--to <deployment config>]
                                   every published version: stage, content digest, signers
arteria algorithm promote <name@version> [--key <prefix>.key] [--to <deployment config>]
                                   dev → validated → released (one step)
arteria algorithm retire <name@version> [--key <prefix>.key] [--to <deployment config>]
                                   loaded nowhere again (final)
arteria algorithm shadow <name@version> --percent <0-100> [--key <prefix>.key] [--to <deployment config>]
arteria algorithm shadow <name> --off [--to <deployment config>]
                                   workers also run that version on a share of <name>'s requests,
                                   after delivery; recorded, never delivered
arteria algorithm shadow-report <name> [--json] [--out <file.json>] [--to <deployment config>]
                                   agreement, error rates and latency: shadow against delivered
  The deployment is its configuration (--to, --config or ARTERIA_CONFIG, and any
  --s3-* / --algorithms-store-* flag): the s3 endpoint, bucket and credentials, and
  algorithms.storeBucket / storePrefix. Workers and ingest processes with
  algorithms.fromStore load the released versions at their next start.`;

const kit = (): Promise<typeof import('@arteria/algorithm-kit')> => import('@arteria/algorithm-kit');

interface ReleaseArgs {
  positionals: string[];
  key: string | undefined;
  json: boolean;
  off: boolean;
  percent: string | undefined;
  out: string | undefined;
  /** Everything else: the deployment's configuration flags. */
  configArgv: string[];
}

/** Leading positionals, this command's own flags, and the rest for the configuration loader. */
function split(argv: readonly string[]): ReleaseArgs {
  const out: ReleaseArgs = { positionals: [], key: undefined, json: false, off: false, percent: undefined, out: undefined, configArgv: [] };
  let i = 0;
  for (; i < argv.length && !(argv[i] ?? '').startsWith('--'); i++) out.positionals.push(argv[i] ?? '');
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--key' || arg === '--to' || arg === '--percent' || arg === '--out') {
      const value = argv[i + 1];
      if (value === undefined) throw usageError(`${arg} needs a value`);
      if (arg === '--key') out.key = value;
      else if (arg === '--percent') out.percent = value;
      else if (arg === '--out') out.out = value;
      else out.configArgv.push('--config', value);
      i += 1;
    } else if (arg === '--json') out.json = true;
    else if (arg === '--off') out.off = true;
    else out.configArgv.push(arg);
  }
  return out;
}

async function withStore<T>(args: ReleaseArgs, use: (store: ArtifactStore) => Promise<T>): Promise<T> {
  const { config } = await loadConfig({ argv: args.configArgv, env: process.env });
  const { store, close } = artifactStoreClient(config);
  try {
    return await use(store);
  } finally {
    close();
  }
}

function one(positionals: readonly string[], what: string): string {
  const [first, ...extra] = positionals;
  if (first === undefined) throw usageError(`needs ${what}`);
  if (extra.length > 0) throw usageError(`unexpected ${extra.join(' ')}`);
  return first;
}

export async function publish(argv: string[], { io }: CommandContext): Promise<number> {
  const args = split(argv);
  const artifact = one(args.positionals, 'the artifact file');
  const key = args.key === undefined ? undefined : await readPrivateKey(args.key);
  const { publishArtifact } = await kit();
  const { record, created } = await withStore(args, (store) => publishArtifact({ artifact, store, key }));
  io.stdout(`${created ? 'published' : 'already published'} ${record.name}@${record.version} (${record.stage})\n  digest  ${record.archiveDigest}\n  content ${record.contentDigest}\n  ${record.artifactSignedBy ? `signed by ${record.artifactSignedBy}` : 'unsigned'}\n`);
  return 0;
}

export async function list(argv: string[], { io }: CommandContext): Promise<number> {
  const args = split(argv);
  if (args.positionals.length > 0) throw usageError(`unexpected ${args.positionals.join(' ')}`);
  const records = await withStore(args, (store) => store.listRecords());
  const { formatReleases } = await kit();
  io.stdout(args.json ? `${JSON.stringify(records, null, 2)}\n` : formatReleases(records));
  return 0;
}

function stageCommand(to: ReleaseStage | 'next'): (argv: string[], context: CommandContext) => Promise<number> {
  return async (argv, { io }) => {
    const args = split(argv);
    const algorithm = one(args.positionals, 'name@version');
    const key = args.key === undefined ? undefined : await readPrivateKey(args.key);
    const { moveStage } = await kit();
    const record = await withStore(args, async (store) => {
      const target: ReleaseStage = to === 'next' ? await nextStage(store, algorithm) : to;
      return moveStage({ store, algorithm, to: target, key });
    });
    io.stdout(`${record.name}@${record.version} is ${record.stage}${record.stageSignature ? ` (signed by ${record.history.at(-1)?.keyId ?? '?'})` : ' (unsigned)'}\n  content ${record.contentDigest}\n`);
    return 0;
  };
}

/** promote: the stage after the current one. */
async function nextStage(store: ArtifactStore, algorithm: string): Promise<ReleaseStage> {
  const at = algorithm.lastIndexOf('@');
  const record = at > 0 ? await store.getRecord(algorithm.slice(0, at), algorithm.slice(at + 1)) : undefined;
  return record?.stage === 'dev' ? 'validated' : 'released';
}

export const promote = stageCommand('next');
export const retire = stageCommand('retired');

export async function shadow(argv: string[], { io }: CommandContext): Promise<number> {
  const args = split(argv);
  const spec = one(args.positionals, 'name@version (or name --off)');
  if (args.off) {
    if (spec.includes('@')) throw usageError('--off takes the algorithm name only');
    await withStore(args, (store) => store.deleteShadowPlan(spec));
    io.stdout(`${spec}: no shadow (workers stop within algorithms.storePollMs)\n`);
    return 0;
  }
  const at = spec.lastIndexOf('@');
  if (at <= 0) throw usageError('name the shadow version as name@version');
  const percent = Number(args.percent);
  if (args.percent === undefined || !Number.isFinite(percent) || percent < 0 || percent > 100) throw usageError('--percent <0-100> is required');
  const name = spec.slice(0, at);
  const version = spec.slice(at + 1);
  const key = args.key === undefined ? undefined : await readPrivateKey(args.key);
  const plan = signShadowPlan({ format: SHADOW_FORMAT, name, version, percent, since: new Date().toISOString() }, key);
  await withStore(args, async (store) => {
    const record = await store.getRecord(name, version);
    if (record === undefined || record.stage === 'retired') throw new ArteriaError('RELEASE_REFUSED', `${spec} is ${record ? 'retired' : 'not published'}; publish it before shadowing it`);
    await store.putShadowPlan(plan);
  });
  io.stdout(`${spec} shadows ${percent} % of ${name}'s requests${plan.keyId ? ` (signed by ${plan.keyId})` : ' (unsigned)'}; workers start it within algorithms.storePollMs\n`);
  return 0;
}

export async function shadowReportCommand(argv: string[], { io }: CommandContext): Promise<number> {
  const args = split(argv);
  const name = one(args.positionals, 'the algorithm name');
  const report = shadowReport(name, await withStore(args, (store) => store.listShadowRecords(name)));
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (args.out !== undefined) await writeFile(args.out, json);
  io.stdout(args.json ? json : formatShadowReport(report));
  return 0;
}
