import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** KEDA's side of the external scaler: a gRPC client of the `externalscaler` service, as KEDA dials it. */
const PROTO = fileURLToPath(new URL('../../../autoscaler/src/externalscaler.proto', import.meta.url));

export type Unary<Req, Res> = (request: Req, callback: (err: grpc.ServiceError | null, response?: Res) => void) => grpc.ClientUnaryCall;
export interface ScalerClient extends grpc.Client {
  IsActive: Unary<object, { result: boolean }>;
  GetMetricSpec: Unary<object, { metricSpecs: { metricName: string; targetSize: number; targetSizeFloat: number }[] }>;
  GetMetrics: Unary<object, { metricValues: { metricName: string; metricValue: number; metricValueFloat: number }[] }>;
  StreamIsActive(request: object): grpc.ClientReadableStream<{ result: boolean }>;
}

export function kedaClient(address: string): ScalerClient {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true }));
  const Ctor = (pkg.externalscaler as grpc.GrpcObject).ExternalScaler as grpc.ServiceClientConstructor;
  return new Ctor(address, grpc.credentials.createInsecure()) as unknown as ScalerClient;
}

export const call = <Req, Res>(fn: Unary<Req, Res>, client: grpc.Client, request: Req): Promise<Res> =>
  new Promise((resolve, reject) => {
    fn.call(client, request, (err, response) => (err ? reject(err) : resolve(response as Res)));
  });

