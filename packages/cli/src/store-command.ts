import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { EMBEDDED_S3_CREDENTIALS, EmbeddedObjectStore } from '@arteria/engine-s3';
import { ArteriaError } from '@arteria/protocol';
import { int } from './args.js';

/** Default S3 API port of `arteria store`: the one `arteria up` and the gateway's defaults use. */
export const STORE_PORT = 18831;

export const STORE_HELP = `arteria store [options]   an S3-API object store (s3rver on the local disk) as its own process
  --port <n>                 S3 API port (default ${STORE_PORT})    --host <addr> (default 127.0.0.1)
  --dir <path>               where objects are kept (default .arteria-store)
  --bucket <name>            a bucket to create if missing (repeatable; default arteria-runs)
  --credentials-file <f>     JSON {accessKeyId, secretAccessKey}: the one key the store accepts
                             (default: s3rver's own, S3RVER / S3RVER)
  For one machine and tests; a production cluster uses S3 or MinIO. SIGTERM stops it.`;

const Credentials = z.strictObject({ accessKeyId: z.string().min(3), secretAccessKey: z.string().min(8) });
export type StoreCredentials = z.infer<typeof Credentials>;

export async function readStoreCredentials(file: string): Promise<StoreCredentials> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `credentials file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = Credentials.safeParse(raw);
  if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `credentials file ${file}: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

export async function storeCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${STORE_HELP}\n`);
    return 0;
  }
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', default: String(STORE_PORT) },
      host: { type: 'string', default: '127.0.0.1' },
      dir: { type: 'string', default: '.arteria-store' },
      bucket: { type: 'string', multiple: true },
      'credentials-file': { type: 'string' },
    },
  });
  const credentials = values['credentials-file'] === undefined ? undefined : await readStoreCredentials(values['credentials-file']);
  const buckets = values.bucket ?? ['arteria-runs'];
  const store = new EmbeddedObjectStore();
  await store.start({ host: values.host, port: int(values.port, '--port'), directory: path.resolve(values.dir), buckets, ...(credentials ? { credentials } : {}) });
  const endpoint = `http://${values.host === '0.0.0.0' ? '127.0.0.1' : values.host}:${new URL(store.endpoint).port}`;
  const key = credentials?.accessKeyId ?? EMBEDDED_S3_CREDENTIALS.accessKeyId;
  // One line on stdout that scripts and tests wait for.
  process.stdout.write(`arteria store ready ${endpoint} buckets ${buckets.join(',')} key ${key} dir ${path.resolve(values.dir)}\n`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.stderr.write(`arteria store: ${signal}: stopping\n`);
  await store.close();
  return 0;
}
