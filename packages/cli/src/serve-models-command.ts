import path from 'node:path';
import { parseArgs } from 'node:util';
import { usageError } from '@arteria/command';
import { int } from './args.js';

export const SERVE_MODELS_HELP = `arteria serve-models --repository <dir> [options]   serve ONNX models over KServe v2 HTTP (Triton-compatible)
arteria serve-models export <algorithm-dir>... --repository <dir> [--max-batch-size N]
                                                  write a Triton model repository for algorithms' models

  --repository <dir>        <model>/config.pbtxt + <model>/<version>/model.onnx (default .arteria/models)
  --host <addr>             (default 127.0.0.1)   --port <n>  (default 8000, Triton's HTTP port)
  --intra-op-threads <n>    ONNX Runtime threads per operator (default 0: one per core)
  --max-batch-size <n>      export: largest frame batch in config.pbtxt (default 64; 0: no batch dimension)`;

const OPTIONS = {
  repository: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'intra-op-threads': { type: 'string' },
  'max-batch-size': { type: 'string' },
} as const;

export async function serveModelsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const repository = path.resolve(values.repository ?? path.join('.arteria', 'models'));
  // Loaded here, not at start-up, so other commands never load ONNX Runtime.
  const inference = await import('@arteria/inference');

  if (positionals[0] === 'export') {
    const algorithmDirs = positionals.slice(1);
    if (algorithmDirs.length === 0) throw usageError('serve-models export needs at least one algorithm folder');
    const maxBatchSize = int(values['max-batch-size'] ?? '64', '--max-batch-size');
    const exported = await inference.exportModelRepository({ algorithmDirs, repository, maxBatchSize });
    for (const m of exported) process.stdout.write(`${m.name}  ${m.digest}  ${m.directory}\n`);
    return 0;
  }
  if (positionals.length > 0) throw usageError(`serve-models: unexpected ${positionals.join(' ')}`);

  const server = await inference.KServeModelServer.start({
    repository,
    host: values.host ?? '127.0.0.1',
    port: int(values.port ?? '8000', '--port'),
    onnxRuntime: { intraOpThreads: int(values['intra-op-threads'] ?? '0', '--intra-op-threads') },
  });
  for (const m of server.models()) process.stdout.write(`serving ${m.name} (versions ${m.versions.join(', ')})\n`);
  process.stdout.write(`KServe v2 HTTP on ${server.url}/v2 (Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
