import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { ArteriaError, Lifecycle, isErrorCode, toArteriaError, type LifecycleState } from '@arteria/protocol';
import { urlHost } from '@arteria/ports';

export interface ObjectStoreOptions {
  host: string;
  port: number;
  directory: string;
  buckets: readonly string[];
  /**
   * The one access key the store accepts; every request must be signed with it (SigV4,
   * header or presigned URL). Default: the development key EMBEDDED_S3_CREDENTIALS, which
   * everyone knows; give a secret one wherever the store is reachable by others.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** s3rver's built-in key: for development and tests only. */
export const DEFAULT_STORE_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

type StoreMessage = { type: 'listening'; port: number } | { type: 'failed'; code: string; message: string } | { type: 'closed'; error?: string };

/**
 * The development key of a standalone embedded object store (`arteria store` without
 * --credentials-file, tests). The embedded platform's store never accepts it: it makes a
 * secret key of its own at each start (`storeCredentials`), and gateways get upload grants.
 */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' } as const;

/**
 * The embedded S3-API object store (s3rver on the local disk) in a thread of its own.
 * Gateways and workers talk to it with the AWS SDK exactly as they would to S3 or MinIO.
 */
export class EmbeddedObjectStore {
  #port = 0;
  #host = '127.0.0.1';
  readonly #life = new Lifecycle('the embedded object store');

  /** Where clients reach it: the address it listens on (loopback when it listens on every address). */
  get endpoint(): string {
    return `http://${this.#host}:${this.#port}`;
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** Starts once (ILLEGAL_STATE after); a start that fails stops the thread. */
  start(options: ObjectStoreOptions): Promise<void> {
    return this.#life.start(async () => {
      // A roomy young generation: s3rver allocates a little per request, and fewer promotions
      // mean fewer old-generation pauses stalling every fetch in flight.
      const thread = new Worker(new URL('./object-store-thread.js', import.meta.url), {
        workerData: { ...options, buckets: [...options.buckets], ...(options.credentials ? { credentials: { ...options.credentials } } : {}) },
        resourceLimits: { maxYoungGenerationSizeMb: 64 },
      });
      let listening = false;
      this.#life.defer('store thread', async () => {
        if (listening) {
          // The server closes its connections, then answers.
          const closed = once(thread, 'message');
          thread.postMessage('close');
          await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
        }
        await thread.terminate();
      });
      const [message] = (await Promise.race([once(thread, 'message'), once(thread, 'error').then(([err]) => { throw toArteriaError(err); })])) as [StoreMessage];
      if (message.type !== 'listening') {
        const text = message.type === 'failed' ? message.message : 'object store thread did not start';
        throw new ArteriaError(message.type === 'failed' && isErrorCode(message.code) ? message.code : 'INTERNAL', text);
      }
      listening = true;
      this.#port = message.port;
      this.#host = urlHost(options.host);
    });
  }

  /** Stops the server (closing its connections) and the thread; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
