import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ArteriaError, Lifecycle } from '@arteria/protocol';
import type { Replicas, ScaleTarget } from '@arteria/ports';

/** The .proto sits beside the sources; from dist/autoscaler the same relative path reaches it. */
const PROTO_PATH = fileURLToPath(new URL('../src/externalscaler.proto', import.meta.url));

export interface KedaScalerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Name of the metric KEDA's HPA scales on. */
  metricName: string;
  /**
   * The pool a ScaledObject without `pool` metadata asks about, and the one setReplicas
   * sets (the autoscaler's computed count). Default `cpu`.
   */
  defaultPool: string;
}

export const KEDA_SCALER_DEFAULTS: Readonly<KedaScalerOptions> = Object.freeze({ host: '127.0.0.1', port: 0, metricName: 'arteria-workers', defaultPool: 'cpu' });

/** The ScaledObject trigger's `pool` metadata: which worker Deployment is asking. */
const POOL_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

interface ScaledObjectRef {
  name: string;
  namespace: string;
  scalerMetadata: Record<string, string>;
}
interface GetMetricsRequest {
  scaledObjectRef: ScaledObjectRef | null;
  metricName: string;
}
interface IsActiveResponse {
  result: boolean;
}

/**
 * A KEDA external scaler that publishes Arteria's computed worker counts, one per worker
 * pool. Each ScaledObject names its pool in its trigger metadata (`pool: cpu`,
 * `pool: gpu`) and gets that pool's count: KEDA reads it with GetMetrics and, with a
 * metric target of 1 per replica, scales that Deployment to exactly that count. A pool
 * nobody set a count for answers 0 and inactive, so its Deployment can rest at zero.
 * IsActive is true while any worker of the pool is wanted; StreamIsActive pushes changes.
 * As a `ScaleTarget`, it sets the default pool; `poolTarget(name)` gives another pool's.
 */
export class KedaExternalScaler implements ScaleTarget, AsyncDisposable {
  readonly kind = 'keda';
  readonly options: Readonly<KedaScalerOptions>;
  readonly #server = new grpc.Server();
  readonly #streams = new Map<grpc.ServerWritableStream<ScaledObjectRef, IsActiveResponse>, string>();
  readonly #desired = new Map<string, number>();
  #port: number | undefined;
  readonly #life = new Lifecycle('KEDA external scaler');

  private constructor(options: Readonly<KedaScalerOptions>) {
    this.options = options;
  }

  static async start(input: Partial<KedaScalerOptions> = {}): Promise<KedaExternalScaler> {
    const scaler = new KedaExternalScaler(Object.freeze({ ...KEDA_SCALER_DEFAULTS, ...input }));
    await scaler.#life.start(() => scaler.#start());
    return scaler;
  }

  /** host:port KEDA dials (the ScaledObject trigger's `scalerAddress`). */
  get address(): string {
    if (this.#port === undefined) throw new ArteriaError('SCALE_TARGET_UNAVAILABLE', 'KEDA external scaler is not listening');
    return `${this.options.host}:${this.#port}`;
  }

  getReplicas(): Promise<Replicas> {
    return Promise.resolve({ desired: this.desiredFor(this.options.defaultPool), ready: undefined });
  }

  setReplicas(count: number): Promise<void> {
    return this.setPoolReplicas(this.options.defaultPool, count);
  }

  /** The count KEDA is told for `pool` (0 for a pool never set). */
  desiredFor(pool: string): number {
    return this.#desired.get(pool) ?? 0;
  }

  /** Sets one pool's count; streams watching that pool hear when it turns active or idle. */
  setPoolReplicas(pool: string, count: number): Promise<void> {
    if (!POOL_PATTERN.test(pool)) return Promise.reject(new ArteriaError('CONFIG_INVALID', `pool name ${JSON.stringify(pool)} must be lower-case letters, digits and '-'`));
    if (!Number.isInteger(count) || count < 0) return Promise.reject(new ArteriaError('CONFIG_INVALID', `replicas must be a whole number >= 0, got ${count}`));
    if (!this.#life.running) return Promise.reject(this.#life.illegal(`set the ${pool} pool's count`));
    const wasActive = this.desiredFor(pool) > 0;
    this.#desired.set(pool, count);
    if (wasActive !== count > 0) {
      for (const [stream, watched] of this.#streams) if (watched === pool) stream.write({ result: count > 0 });
    }
    return Promise.resolve();
  }

  /** A ScaleTarget for one pool, for an autoscaler that sizes that pool. */
  poolTarget(pool: string): ScaleTarget {
    return {
      kind: `keda:${pool}`,
      getReplicas: () => Promise.resolve({ desired: this.desiredFor(pool), ready: undefined }),
      setReplicas: (count) => this.setPoolReplicas(pool, count),
    };
  }

  /** The pool a request is about: its ScaledObject's `pool` metadata, else the default. */
  #poolOf(ref: ScaledObjectRef | null | undefined): string {
    const pool = ref?.scalerMetadata?.pool;
    return typeof pool === 'string' && pool !== '' ? pool : this.options.defaultPool;
  }

  /** Ends open streams and stops the server; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #start(): Promise<void> {
    const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition);
    const externalscaler = pkg.externalscaler as grpc.GrpcObject;
    const service = (externalscaler.ExternalScaler as grpc.ServiceClientConstructor).service;
    const metric = this.options.metricName;
    const handlers: grpc.UntypedServiceImplementation = {
      IsActive: (call: grpc.ServerUnaryCall<ScaledObjectRef, IsActiveResponse>, done: grpc.sendUnaryData<IsActiveResponse>) => {
        done(null, { result: this.desiredFor(this.#poolOf(call.request)) > 0 });
      },
      StreamIsActive: (call: grpc.ServerWritableStream<ScaledObjectRef, IsActiveResponse>) => {
        const pool = this.#poolOf(call.request);
        this.#streams.set(call, pool);
        call.on('cancelled', () => this.#streams.delete(call));
        call.on('close', () => this.#streams.delete(call));
        call.write({ result: this.desiredFor(pool) > 0 });
      },
      GetMetricSpec: (_call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, done: grpc.sendUnaryData<unknown>) => {
        done(null, { metricSpecs: [{ metricName: metric, targetSize: 1, targetSizeFloat: 1 }] });
      },
      GetMetrics: (call: grpc.ServerUnaryCall<GetMetricsRequest, unknown>, done: grpc.sendUnaryData<unknown>) => {
        const name = call.request.metricName || metric;
        if (name !== metric) {
          done({ code: grpc.status.NOT_FOUND, details: `unknown metric ${JSON.stringify(name)}; this scaler serves ${JSON.stringify(metric)}` });
          return;
        }
        const desired = this.desiredFor(this.#poolOf(call.request.scaledObjectRef));
        done(null, { metricValues: [{ metricName: metric, metricValue: desired, metricValueFloat: desired }] });
      },
    };
    this.#server.addService(service, handlers);
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${this.options.host}:${this.options.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(new ArteriaError(err.message.includes('EADDRINUSE') || err.message.includes('No address added') ? 'PORT_IN_USE' : 'SCALE_TARGET_UNAVAILABLE', `KEDA external scaler cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`, { cause: err }));
        else resolve(port);
      });
    });
    this.#life.defer('gRPC server', () => {
      for (const stream of this.#streams.keys()) stream.end();
      this.#streams.clear();
      return new Promise<void>((resolve) => {
        // A KEDA operator that keeps its connection open does not hold the close up.
        const timer = setTimeout(() => this.#server.forceShutdown(), 2_000);
        this.#server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    });
  }
}
