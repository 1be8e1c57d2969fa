import { createHmac, timingSafeEqual } from 'node:crypto';
import { isValidId, readDeviceToken, type DeviceAddress, type ErrorCode } from '@arteria/protocol';
import type { DeviceRevocations } from './revocations.js';

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
  /** Devices refused whatever credential they show; none: no device is revoked. */
  revocations?: DeviceRevocations;
  /**
   * Accept device tokens without an expiry (made before tokens expired), while devices
   * move to expiring ones. Default false: such a token is refused as expired.
   */
  acceptLegacyTokens?: boolean;
  /** The clock tokens expire by (default Date.now). */
  now?: () => number;
}

/** Why credentials were refused: the claimed identity, a typed code and a reason for the log. */
export interface AuthRefusal {
  /** The identity the username claimed ('' when none was sent). */
  claimed: string;
  code: Extract<ErrorCode, 'NOT_AUTHORIZED' | 'CREDENTIAL_EXPIRED' | 'DEVICE_REVOKED'>;
  reason: string;
}

export type Authentication = { ok: true; identity: Identity } | ({ ok: false } & AuthRefusal);

const refused = (claimed: string, code: AuthRefusal['code'], reason: string): Authentication => ({ ok: false, claimed, code, reason });

/** Whether a proven device is on the revocation list; the refusal when it is. */
export function revocationOf(secrets: Pick<Secrets, 'revocations'>, device: DeviceAddress): AuthRefusal | undefined {
  const entry = secrets.revocations?.revoked(device);
  if (entry === undefined) return undefined;
  const reason = `device ${device.tenant}/${device.device} was revoked at ${new Date(entry.revokedAt).toISOString()}${entry.reason === undefined ? '' : ` (${entry.reason})`}`;
  return { claimed: `${device.tenant}/${device.device}`, code: 'DEVICE_REVOKED', reason };
}

/**
 * Resolves MQTT credentials to an identity, or says why not: NOT_AUTHORIZED (unknown or
 * wrong), CREDENTIAL_EXPIRED (a device token past its expiry, or a legacy token where they
 * are not accepted), DEVICE_REVOKED (the device is on the revocation list).
 */
export function authenticate(secrets: Secrets, username: string | undefined, password: Buffer | undefined): Authentication {
  const claimed = username ?? '';
  if (username === undefined || password === undefined) return refused(claimed, 'NOT_AUTHORIZED', 'bad username or password');
  const token = password.toString('utf8');
  if (username.startsWith(SERVICE_PREFIX)) {
    const name = username.slice(SERVICE_PREFIX.length);
    return isValidId(name) && safeEqual(serviceToken(secrets.platform, name), token) ? { ok: true, identity: { kind: 'service', name } } : refused(claimed, 'NOT_AUTHORIZED', 'bad username or password');
  }
  const [tenant = '', device = '', ...rest] = username.split('/');
  if (rest.length > 0 || !isValidId(tenant) || !isValidId(device)) return refused(claimed, 'NOT_AUTHORIZED', 'bad username or password');
  const secret = secrets.tenants.get(tenant);
  const address: DeviceAddress = { tenant, device };
  const claims = secret === undefined ? undefined : readDeviceToken(secret, address, token);
  if (claims === undefined) return refused(claimed, 'NOT_AUTHORIZED', 'bad username or password');
  // Revocation first: a revoked device is told so whatever its token's age.
  const revoked = revocationOf(secrets, address);
  if (revoked !== undefined) return { ok: false, ...revoked };
  if (claims.format === 'legacy') {
    if (secrets.acceptLegacyTokens !== true) return refused(claimed, 'CREDENTIAL_EXPIRED', 'a token without an expiry (made before tokens expired) is no longer accepted: issue the device a new one');
  } else {
    const now = (secrets.now ?? Date.now)();
    if (now >= claims.expiresAt) return refused(claimed, 'CREDENTIAL_EXPIRED', `token generation ${claims.generation} expired at ${new Date(claims.expiresAt).toISOString()}`);
  }
  return { ok: true, identity: { kind: 'device', tenant, device } };
}

/** Resolves MQTT credentials to an identity, or undefined when they are not valid (see authenticate for why). */
export function identify(secrets: Secrets, username: string | undefined, password: Buffer | undefined): Identity | undefined {
  const result = authenticate(secrets, username, password);
  return result.ok ? result.identity : undefined;
}
