import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ArteriaError } from '@arteria/protocol';
import type { Replicas, ScaleTarget } from './scale-target.js';

/** The .proto sits beside the sources; from dist/autoscaler the same relative path reaches it. */
const PROTO_PATH = fileURLToPath(new URL('../../src/autoscaler/externalscaler.proto', import.meta.url));

export interface KedaScalerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Name of the metric KEDA's HPA scales on. */
  metricName: string;
}

export const KEDA_SCALER_DEFAULTS: Readonly<KedaScalerOptions> = Object.freeze({ host: '127.0.0.1', port: 0, metricName: 'arteria-workers' });

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
 * A KEDA external scaler that publishes Arteria's computed worker count. As a
 * `ScaleTarget`, it holds the count the autoscaler sets; KEDA reads it with GetMetrics
 * and, with a metric target of 1 per replica, scales the Deployment to exactly that
 * count. IsActive is true while any worker is wanted; StreamIsActive pushes changes.
 */
export class KedaExternalScaler implements ScaleTarget {
  readonly kind = 'keda';
  readonly options: Readonly<KedaScalerOptions>;
  readonly #server = new grpc.Server();
  readonly #streams = new Set<grpc.ServerWritableStream<ScaledObjectRef, IsActiveResponse>>();
  #desired = 0;
  #port: number | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: Readonly<KedaScalerOptions>) {
    this.options = options;
  }

  static async start(input: Partial<KedaScalerOptions> = {}): Promise<KedaExternalScaler> {
    const scaler = new KedaExternalScaler(Object.freeze({ ...KEDA_SCALER_DEFAULTS, ...input }));
    await scaler.#start();
    return scaler;
  }

  /** host:port KEDA dials (the ScaledObject trigger's `scalerAddress`). */
  get address(): string {
    if (this.#port === undefined) throw new ArteriaError('SCALE_TARGET_UNAVAILABLE', 'KEDA external scaler is not listening');
    return `${this.options.host}:${this.#port}`;
  }

  getReplicas(): Promise<Replicas> {
    return Promise.resolve({ desired: this.#desired, ready: undefined });
  }

  setReplicas(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 0) return Promise.reject(new ArteriaError('CONFIG_INVALID', `replicas must be a whole number >= 0, got ${count}`));
    const wasActive = this.#desired > 0;
    this.#desired = count;
    if (wasActive !== count > 0) for (const stream of this.#streams) stream.write({ result: count > 0 });
    return Promise.resolve();
  }

  /** Ends open streams and stops the server. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const stream of this.#streams) stream.end();
      this.#streams.clear();
      const timer = setTimeout(() => this.#server.forceShutdown(), 2_000);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #start(): Promise<void> {
    const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition);
    const externalscaler = pkg.externalscaler as grpc.GrpcObject;
    const service = (externalscaler.ExternalScaler as grpc.ServiceClientConstructor).service;
    const metric = this.options.metricName;
    const handlers: grpc.UntypedServiceImplementation = {
      IsActive: (_call: grpc.ServerUnaryCall<ScaledObjectRef, IsActiveResponse>, done: grpc.sendUnaryData<IsActiveResponse>) => {
        done(null, { result: this.#desired > 0 });
      },
      StreamIsActive: (call: grpc.ServerWritableStream<ScaledObjectRef, IsActiveResponse>) => {
        this.#streams.add(call);
        call.on('cancelled', () => this.#streams.delete(call));
        call.on('close', () => this.#streams.delete(call));
        call.write({ result: this.#desired > 0 });
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
        done(null, { metricValues: [{ metricName: metric, metricValue: this.#desired, metricValueFloat: this.#desired }] });
      },
    };
    this.#server.addService(service, handlers);
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${this.options.host}:${this.options.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(new ArteriaError(err.message.includes('EADDRINUSE') || err.message.includes('No address added') ? 'PORT_IN_USE' : 'SCALE_TARGET_UNAVAILABLE', `KEDA external scaler cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`, { cause: err }));
        else resolve(port);
      });
    });
  }
}
