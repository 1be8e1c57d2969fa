import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DeviceAddress } from './topics.js';
import { ArteriaError } from './errors.js';

/**
 * MQTT credentials of a device: username `{tenant}/{device}`, password a token derived
 * from the tenant's provisioning secret. The broker checks the token and binds the
 * connection to that one device; it may then speak only on its own topics.
 */
export const deviceUsername = (address: DeviceAddress): string => `${address.tenant}/${address.device}`;

/** How long a device token is valid when its issuer does not say (90 days). */
export const DEVICE_TOKEN_TTL_MS = 90 * 24 * 60 * 60 * 1000;

/** The prefix of an expiring token: `at2.{generation}.{issuedAt}.{expiresAt}.{mac}` (times in Unix seconds). */
const V2 = 'at2';

export interface DeviceTokenOptions {
  /** The device's token generation (a key id): each rotation issues the next one. Default 0. */
  generation?: number;
  /** When the token was issued (epoch ms); default now. */
  issuedAt?: number;
  /** When it stops being accepted (epoch ms); default issuedAt + DEVICE_TOKEN_TTL_MS. */
  expiresAt?: number;
}

/** What a valid token says about itself. Legacy tokens (made before tokens expired) carry no times. */
export type DeviceTokenClaims = { format: 'v2'; generation: number; issuedAt: number; expiresAt: number } | { format: 'legacy' };

const seconds = (ms: number): number => Math.floor(ms / 1000);

const mac = (secret: string, address: DeviceAddress, generation: number, issued: number, expires: number): string =>
  createHmac('sha256', secret).update(`arteria-device-token\n${deviceUsername(address)}\n${generation}\n${issued}\n${expires}`).digest('base64url');

/**
 * An expiring device token: `at2.{generation}.{issuedAt}.{expiresAt}.{mac}`, an HMAC-SHA256
 * under the tenant's secret over the device's name, generation and times. The times are
 * readable, so a gateway can tell when to ask for a new one; only the secret's holder can
 * make one.
 */
export function deviceToken(secret: string, address: DeviceAddress, options: DeviceTokenOptions = {}): string {
  const generation = options.generation ?? 0;
  if (!Number.isSafeInteger(generation) || generation < 0) throw new ArteriaError('CONFIG_INVALID', `a token generation is a whole number >= 0, got ${generation}`);
  const issued = seconds(options.issuedAt ?? Date.now());
  const expires = seconds(options.expiresAt ?? issued * 1000 + DEVICE_TOKEN_TTL_MS);
  if (expires <= issued) throw new ArteriaError('CONFIG_INVALID', 'a token must expire after it is issued');
  return `${V2}.${generation}.${issued}.${expires}.${mac(secret, address, generation, issued, expires)}`;
}

/**
 * The token of the first releases: never expires. Still checked where an operator accepts
 * legacy tokens while the devices move to expiring ones (docs/identity.md).
 */
export function legacyDeviceToken(secret: string, address: DeviceAddress): string {
  return createHmac('sha256', secret).update(deviceUsername(address)).digest('base64url');
}

/**
 * A legacy device's token after `generation` rotations: 0 is legacyDeviceToken(); each
 * rotation derives a new one from the same tenant secret. Kept so a broker's password file
 * written before tokens expired goes on working until its devices are rotated.
 */
export function rotatedDeviceToken(secret: string, address: DeviceAddress, generation: number): string {
  if (generation === 0) return legacyDeviceToken(secret, address);
  return createHmac('sha256', secret).update(`${deviceUsername(address)}#${generation}`).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const DECIMAL = /^(0|[1-9][0-9]{0,14})$/;

/**
 * What a token proves for this device under this secret, or undefined when it is not one
 * of its tokens. Expiry is not judged here: the caller knows the time and the policy.
 */
export function readDeviceToken(secret: string, address: DeviceAddress, token: string): DeviceTokenClaims | undefined {
  if (!token.startsWith(`${V2}.`)) return safeEqual(legacyDeviceToken(secret, address), token) ? { format: 'legacy' } : undefined;
  const [, generation = '', issued = '', expires = '', given = '', ...rest] = token.split('.');
  if (rest.length > 0 || !DECIMAL.test(generation) || !DECIMAL.test(issued) || !DECIMAL.test(expires)) return undefined;
  const claims = { format: 'v2', generation: Number(generation), issuedAt: Number(issued) * 1000, expiresAt: Number(expires) * 1000 } as const;
  return safeEqual(mac(secret, address, claims.generation, Number(issued), Number(expires)), given) ? claims : undefined;
}

/** Whether the token is this device's under this secret and not expired at `now` (a legacy token never expires). */
export function verifyDeviceToken(secret: string, address: DeviceAddress, token: string, now: number = Date.now()): boolean {
  const claims = readDeviceToken(secret, address, token);
  return claims !== undefined && (claims.format === 'legacy' || now < claims.expiresAt);
}

/**
 * The one MQTT client id a device's persistent session lives under. A broker binds it to
 * the device's identity, so no other identity can resume or take over that session.
 */
export const deviceClientId = (address: DeviceAddress): string => `${address.tenant}.${address.device}`;
