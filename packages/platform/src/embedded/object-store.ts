import { createServer, type Server } from 'node:http';
import S3rver from 's3rver';
import { closeServer, listen } from './listen.js';

export interface ObjectStoreOptions {
  host: string;
  port: number;
  directory: string;
  buckets: readonly string[];
}

/**
 * The embedded S3-API object store (s3rver on the local disk). Gateways and workers
 * talk to it with the AWS SDK exactly as they would to S3 or MinIO.
 */
export class EmbeddedObjectStore {
  #server: Server | undefined;
  #port = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(options: ObjectStoreOptions): Promise<void> {
    const s3 = new S3rver({
      silent: true,
      directory: options.directory,
      configureBuckets: options.buckets.map((name) => ({ name })),
      vhostBuckets: false,
    });
    await s3.configureBuckets();
    const server = createServer(s3.callback());
    server.on('connection', (socket) => socket.setNoDelay(true));
    this.#port = await listen(server, options.port, options.host, '--s3-port');
    this.#server = server;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await closeServer(server);
  }
}
