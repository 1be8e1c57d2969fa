import { deviceClientId, isValidId } from '@arteria/protocol';
import type { Identity } from './identity.js';

/** Why a broker refused a client id, as an MQTT 3.1.1 CONNACK code: 2 identifier rejected, 5 not authorized. */
export interface ClientIdRefusal {
  returnCode: 2 | 5;
  reason: string;
}

/** The client id prefix of a platform service: `arteria-{name}`, then `-{instance}` for each process. */
export const serviceClientIdPrefix = (name: string): string => `arteria-${name}`;

/** Instance suffixes of service client ids: letters, digits, `_` and `-` (never `.`, which device ids hold). */
const SERVICE_INSTANCE = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * The client ids an identity may connect with. A client id names a session; whoever may
 * use it may resume that session and disconnect its holder, so each id belongs to exactly
 * one identity:
 * - a device: its canonical id `{tenant}.{device}` (the one persistent session), or
 *   `{tenant}.{device}.{tag}` for a clean, short-lived probe (the gateway's doctor);
 * - a service `name`: `arteria-{name}` or `arteria-{name}-{instance}`, so processes of one
 *   service (several ingest replicas) each hold their own session.
 * Device ids always hold a `.` and service ids never do, so neither can reach the other's.
 */
export function checkClientId(identity: Identity, clientId: string, clean: boolean): ClientIdRefusal | undefined {
  if (clientId === '' || clientId.includes('+') || clientId.includes('#')) {
    return { returnCode: 2, reason: `client id ${JSON.stringify(clientId)} is empty or holds a wildcard (+ #)` };
  }
  if (identity.kind === 'device') {
    const own = deviceClientId(identity);
    if (clientId === own) return undefined;
    if (clientId.startsWith(`${own}.`) && isValidId(clientId.slice(own.length + 1))) {
      return clean ? undefined : { returnCode: 5, reason: `client id ${clientId} may only hold a clean session; the persistent one is ${own}` };
    }
    return { returnCode: 5, reason: `device ${identity.tenant}/${identity.device} may only use client id ${own}, not ${JSON.stringify(clientId)}` };
  }
  const prefix = serviceClientIdPrefix(identity.name);
  if (clientId === prefix || (clientId.startsWith(`${prefix}-`) && SERVICE_INSTANCE.test(clientId.slice(prefix.length + 1)))) return undefined;
  return { returnCode: 5, reason: `service ${identity.name} may only use client ids ${prefix} or ${prefix}-{instance}, not ${JSON.stringify(clientId)}` };
}
