import path from 'node:path';
import { parseArgs } from 'node:util';
import { usageError, type CommandContext } from '@arteria/command';
import { ArteriaError } from '@arteria/protocol';
import { ARTERIA_VERSION } from './version.js';
import { RELEASE_HELP, list, promote, publish, retire, shadow, shadowReportCommand } from './algorithm-release-command.js';

export const ALGORITHM_HELP = `arteria algorithm init <name> [--runtime node|onnx] [--dir <path>]
                                   a new algorithm package (manifest, code, model slot, golden
                                   cases, eval harness, model card) that passes its own tests
arteria algorithm test <dir> [--update] [--json]
                                   contract, golden cases, determinism and limits, run through
                                   the platform's isolated runner and inference backend (exit 1
                                   when a check fails); --update records the current outputs
arteria algorithm eval <dir> [--json]
                                   metrics of eval/score.js over eval/dataset.json
arteria algorithm pack <dir> [--out <dir>] [--skip-tests]
                                   tests, then writes <name>-<version>-sha256-<digest>.tar
                                   (default --out artifacts) with its CycloneDX SBOM
arteria algorithm keygen <prefix>  an Ed25519 key pair: <prefix>.key (0600, keep it) and <prefix>.pub
arteria algorithm sign <artifact> --key <prefix>.key
                                   writes <artifact>.sig.json
arteria algorithm verify <artifact> --public-key <pub>... [--signature <file>]
                                   exit 1 unless a trusted key signed exactly these bytes
arteria algorithm install <artifact> --into <dir> [--public-key <pub>]... [--require-signature]
                                   unpacks into <dir>/<name>-<version>-<digest>/ for the platform's
                                   --algorithm-dir (signature checked and kept as signature.json)
${RELEASE_HELP}

See docs/algorithms.md.`;

// Loaded on use: the kit pulls in the platform's runner and ONNX Runtime.
const kit = (): Promise<typeof import('@arteria/algorithm-kit')> => import('@arteria/algorithm-kit');

function one(positionals: string[], what: string): string {
  const [first, ...extra] = positionals;
  if (first === undefined) throw usageError(`needs ${what}`);
  if (extra.length > 0) throw usageError(`unexpected ${extra.join(' ')}`);
  return first;
}

async function init(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { runtime: { type: 'string' }, dir: { type: 'string' } }, allowPositionals: true });
  const name = one(positionals, 'the algorithm name');
  const runtime = values.runtime ?? 'node';
  if (runtime !== 'node' && runtime !== 'onnx') throw usageError(`--runtime is node or onnx, not ${runtime}`);
  const { initAlgorithm, formatReport } = await kit();
  const result = await initAlgorithm({ dir: values.dir ?? name, name, runtime });
  io.stdout(`created ${result.dir}\n${result.files.map((f) => `  ${f}\n`).join('')}\n`);
  io.stdout(formatReport(result.report));
  if (result.report.ok) io.stdout(`\nnext: edit src/index.js, then \`arteria algorithm test ${path.relative(process.cwd(), result.dir) || '.'}\`\n`);
  return result.report.ok ? 0 : 1;
}

async function test(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { update: { type: 'boolean' }, json: { type: 'boolean' } }, allowPositionals: true });
  const dir = one(positionals, 'the algorithm folder');
  const { testAlgorithm, formatReport } = await kit();
  const report = await testAlgorithm(dir, { update: values.update === true });
  io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

async function evaluate(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, allowPositionals: true });
  const dir = one(positionals, 'the algorithm folder');
  const { evaluateAlgorithm, formatEvalReport } = await kit();
  const report = await evaluateAlgorithm(dir);
  io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatEvalReport(report));
  return report.failures.length === 0 ? 0 : 1;
}

async function pack(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { out: { type: 'string' }, 'skip-tests': { type: 'boolean' } }, allowPositionals: true });
  const dir = one(positionals, 'the algorithm folder');
  const { testAlgorithm, formatReport, packAlgorithm } = await kit();
  if (values['skip-tests'] !== true) {
    const report = await testAlgorithm(dir);
    if (!report.ok) {
      io.stderr(formatReport(report));
      throw new ArteriaError('CONFIG_INVALID', `${report.algorithm} fails its tests; nothing was packed (--skip-tests packs anyway)`);
    }
  }
  const packed = await packAlgorithm({ dir, outDir: values.out ?? 'artifacts', tool: { name: 'arteria', version: ARTERIA_VERSION } });
  io.stdout(`${packed.algorithm}\n  artifact ${packed.file} (${packed.bytes} bytes)\n  digest   ${packed.digest}\n  content  ${packed.contentDigest} (what its results name)\n`);
  return 0;
}

async function keygen(argv: string[], { io }: CommandContext): Promise<number> {
  const { positionals } = parseArgs({ args: argv, options: {}, allowPositionals: true });
  const prefix = one(positionals, 'a file prefix, e.g. keys/release');
  const { generateSigningKey } = await kit();
  const keys = await generateSigningKey(prefix);
  io.stdout(`key ${keys.keyId}\n  private ${keys.privateKeyFile} (keep it secret; signs artifacts)\n  public  ${keys.publicKeyFile} (give it to every platform that runs them)\n`);
  return 0;
}

async function sign(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { key: { type: 'string' } }, allowPositionals: true });
  const artifact = one(positionals, 'the artifact file');
  if (values.key === undefined) throw usageError('--key <private key file> is required');
  const { signArtifactFile } = await kit();
  const { file, signature } = await signArtifactFile(artifact, values.key);
  io.stdout(`signed ${signature.algorithm} ${signature.archiveDigest} with key ${signature.keyId}\n  ${file}\n`);
  return 0;
}

async function verify(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { 'public-key': { type: 'string', multiple: true, default: [] }, signature: { type: 'string' } },
    allowPositionals: true,
  });
  const artifact = one(positionals, 'the artifact file');
  if (values['public-key'].length === 0) throw usageError('--public-key <file> is required (repeatable)');
  const { verifyArtifactFile, readPublicKeys } = await kit();
  const keys = await readPublicKeys(values['public-key']);
  const verified = await verifyArtifactFile(artifact, keys, values.signature);
  io.stdout(`verified ${verified.descriptor.algorithm}: signed by key ${verified.keyId}\n  digest  ${verified.digest}\n  content ${verified.descriptor.contentDigest}\n`);
  return 0;
}

async function install(argv: string[], { io }: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { into: { type: 'string' }, 'public-key': { type: 'string', multiple: true, default: [] }, 'require-signature': { type: 'boolean' } },
    allowPositionals: true,
  });
  const artifact = one(positionals, 'the artifact file');
  if (values.into === undefined) throw usageError('--into <folder of installed algorithms> is required');
  const { installArtifact, readPublicKeys } = await kit();
  const publicKeys = await readPublicKeys(values['public-key']);
  const installed = await installArtifact({ artifact, into: values.into, publicKeys, requireSignature: values['require-signature'] === true });
  io.stdout(`installed ${installed.algorithm} ${installed.contentDigest} (${installed.signedBy ? `signed by ${installed.signedBy}` : 'unsigned'})\n  ${installed.dir}\n`);
  return 0;
}

const SUBCOMMANDS: Readonly<Record<string, (argv: string[], context: CommandContext) => Promise<number>>> = {
  init,
  test,
  eval: evaluate,
  pack,
  keygen,
  sign,
  verify,
  install,
  publish,
  list,
  promote,
  retire,
  shadow,
  'shadow-report': shadowReportCommand,
};

/** `arteria algorithm <subcommand>`: the table in commands.ts names each with its summary. */
export async function algorithmCommand(argv: string[], context: CommandContext): Promise<number> {
  const [name = '', ...rest] = argv;
  const run = SUBCOMMANDS[name];
  if (run === undefined) throw usageError(`unknown subcommand ${JSON.stringify(name)}`);
  return await run(rest, context);
}
