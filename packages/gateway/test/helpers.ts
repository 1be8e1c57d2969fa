// The gateway's test helpers: what it shares with gateway-site's tests (servers, the
// Responder playing the platform, PHI runs, DICOM tools) lives in the test kit,
// @arteria/testing; here only what takes the gateway's own types.
import { type GatewayOptionsInput, type NewEntry } from '@arteria/gateway';
import { gatewayConnection, type Servers } from '@arteria/testing';

export {
  BUCKET,
  Responder,
  TENANT,
  TENANT_SECRET,
  freePort,
  listKeys,
  memoryLogger,
  objectBytes,
  serversForFile,
  sha256,
  smallRun,
  startAnonymousMosquitto,
  startBroker,
  startServers,
  startServersWithResponder,
  stopProcess,
  type Broker,
  type BrokerKind,
  type SeenRequest,
  type Servers,
} from '@arteria/testing';

/** The same gateway without store keys: it uploads with upload grants the responder signs. */
export function withGrants(options: GatewayOptionsInput): GatewayOptionsInput {
  const { accessKeyId: _key, secretAccessKey: _secret, ...s3 } = options.s3;
  return { ...options, s3 };
}

/** The options of a gateway on `servers` as device `device` (the test kit's connection), with `overrides`. */
export function gatewayOptions(servers: Pick<Servers, 'mqttUrl' | 's3Endpoint' | 'directory'>, device: string, overrides: Partial<GatewayOptionsInput> = {}): GatewayOptionsInput {
  return { ...gatewayConnection(servers, device), ...overrides };
}

/** An outbox entry for tests of the outbox alone (no file behind it). */
export const newOutboxEntry = (id: string, trace?: NewEntry['trace']): NewEntry => ({
  id,
  sourcePath: `/runs/${id}.dcm`,
  spooled: false,
  algorithm: 'echo@^1',
  instanceUid: '1.2.3',
  objectKey: `acme/dev1/${id}`,
  priority: 'clinical',
  deadline: undefined,
  acquiredAt: 1_000,
  trace,
});
