import { usageError, type CommandContext } from '@arteria/command';
import { artifactStoreClient, readPrivateKey, type ArtifactStore, type ReleaseStage } from '@arteria/platform';
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
  The deployment is its configuration (--to, --config or ARTERIA_CONFIG, and any
  --s3-* / --algorithms-store-* flag): the s3 endpoint, bucket and credentials, and
  algorithms.storeBucket / storePrefix. Workers and ingest processes with
  algorithms.fromStore load the released versions at their next start.`;

const kit = (): Promise<typeof import('@arteria/algorithm-kit')> => import('@arteria/algorithm-kit');

interface ReleaseArgs {
  positionals: string[];
  key: string | undefined;
  json: boolean;
  /** Everything else: the deployment's configuration flags. */
  configArgv: string[];
}

/** Leading positionals, this command's own flags, and the rest for the configuration loader. */
function split(argv: readonly string[]): ReleaseArgs {
  const out: ReleaseArgs = { positionals: [], key: undefined, json: false, configArgv: [] };
  let i = 0;
  for (; i < argv.length && !(argv[i] ?? '').startsWith('--'); i++) out.positionals.push(argv[i] ?? '');
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--key' || arg === '--to') {
      const value = argv[i + 1];
      if (value === undefined) throw usageError(`${arg} needs a value`);
      if (arg === '--key') out.key = value;
      else out.configArgv.push('--config', value);
      i += 1;
    } else if (arg === '--json') out.json = true;
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
