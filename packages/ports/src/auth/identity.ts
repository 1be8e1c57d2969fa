import { createHmac, timingSafeEqual } from 'node:crypto';
import { isValidId, verifyDeviceToken, type DeviceAddress } from '@arteria/protocol';

/** Who is on the other end of an MQTT connection. */
export type Identity = { kind: 'device'; tenant: string; device: string } | { kind: 'service'; name: string };

const SERVICE_PREFIX = 'service:';

/** Platform services (workers, dashboard) connect as `service:{name}` with a token from the platform secret. */
export const serviceUsername = (name: string): string => `${SERVICE_PREFIX}${name}`;

export function serviceToken(secret: string, name: string): string {
  return createHmac('sha256', secret).update(serviceUsername(name)).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface Secrets {
  /** Tenant provisioning secrets: a device token is derived from its tenant's secret. */
  tenants: ReadonlyMap<string, string>;
  /** Secret from which platform service tokens are derived. */
  platform: string;
}

/** Resolves MQTT credentials to an identity, or undefined when they are not valid. */
export function identify(secrets: Secrets, username: string | undefined, password: Buffer | undefined): Identity | undefined {
  if (username === undefined || password === undefined) return undefined;
  const token = password.toString('utf8');
  if (username.startsWith(SERVICE_PREFIX)) {
    const name = username.slice(SERVICE_PREFIX.length);
    return isValidId(name) && safeEqual(serviceToken(secrets.platform, name), token) ? { kind: 'service', name } : undefined;
  }
  const [tenant = '', device = '', ...rest] = username.split('/');
  if (rest.length > 0 || !isValidId(tenant) || !isValidId(device)) return undefined;
  const secret = secrets.tenants.get(tenant);
  const address: DeviceAddress = { tenant, device };
  return secret !== undefined && verifyDeviceToken(secret, address, token) ? { kind: 'device', tenant, device } : undefined;
}
