// The gateway options gateway-site's tests start from: the test kit's connection to its
// servers (@arteria/testing), typed as the gateway takes them.
import type { GatewayOptionsInput } from '@arteria/gateway';
import { gatewayConnection, type Servers } from '@arteria/testing';

/** The options of a gateway on `servers` as device `device`, with `overrides`. */
export function gatewayOptions(servers: Pick<Servers, 'mqttUrl' | 's3Endpoint' | 'directory'>, device: string, overrides: Partial<GatewayOptionsInput> = {}): GatewayOptionsInput {
  return { ...gatewayConnection(servers, device), ...overrides };
}
