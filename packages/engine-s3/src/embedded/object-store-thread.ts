// The embedded object store's own thread: s3rver's request handling and file I/O stay
// off the platform's event loop, where ingest and the workers run.
import { createServer } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import S3rver from 's3rver';
import AWSAccount from 's3rver/lib/models/account.js';
import { toArteriaError } from '@arteria/protocol';
import { closeServer, listen } from '@arteria/ports';
import { DEFAULT_STORE_CREDENTIALS, type ObjectStoreOptions } from './object-store.js';
import { withSignatureCheck } from './store-signature.js';
import { withMultipartOperations } from './store-multipart.js';

const options = workerData as ObjectStoreOptions;
const port = parentPort;
if (port === null) throw new Error('object-store-thread must run in a worker thread');

try {
  const credentials = options.credentials ?? DEFAULT_STORE_CREDENTIALS;
  if (options.credentials !== undefined) {
    // s3rver keeps its accounts in a per-module registry (one per thread): swap its
    // built-in key for the configured one.
    AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
    AWSAccount.DUMMY_ACCOUNT.createKeyPair(credentials.accessKeyId, credentials.secretAccessKey);
  }
  const s3 = new S3rver({
    silent: true,
    directory: options.directory,
    configureBuckets: options.buckets.map((name) => ({ name })),
    vhostBuckets: false,
  });
  await s3.configureBuckets();
  // Every request must carry a valid SigV4 signature by the store's key (header or presigned URL).
  const handle = withSignatureCheck(withMultipartOperations(s3.callback(), options.directory), new Map([[credentials.accessKeyId, credentials.secretAccessKey]]));
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  server.on('connection', (socket) => socket.setNoDelay(true));
  const bound = await listen(server, options.port, options.host, '--s3-port');
  port.on('message', (message) => {
    if (message !== 'close') return;
    closeServer(server).then(
      () => port.postMessage({ type: 'closed' }),
      (err: unknown) => port.postMessage({ type: 'closed', error: String(err) }),
    );
  });
  port.postMessage({ type: 'listening', port: bound });
} catch (err) {
  const error = toArteriaError(err);
  port.postMessage({ type: 'failed', code: error.code, message: error.message });
}
