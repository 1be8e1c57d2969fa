import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DeviceAddress } from './topics.js';

/**
 * MQTT credentials of a device: username `{tenant}/{device}`, password a token derived
 * from the tenant's provisioning secret. The broker checks the token and binds the
 * connection to that one device; it may then speak only on its own topics.
 */
export const deviceUsername = (address: DeviceAddress): string => `${address.tenant}/${address.device}`;

export function deviceToken(secret: string, address: DeviceAddress): string {
  return createHmac('sha256', secret).update(deviceUsername(address)).digest('base64url');
}

/**
 * A device's token after `generation` rotations: 0 is deviceToken(); each rotation derives
 * a new one from the same tenant secret, so a broker's password file (not the embedded
 * broker, which checks generation 0) can retire one device's token alone.
 */
export function rotatedDeviceToken(secret: string, address: DeviceAddress, generation: number): string {
  if (generation === 0) return deviceToken(secret, address);
  return createHmac('sha256', secret).update(`${deviceUsername(address)}#${generation}`).digest('base64url');
}

export function verifyDeviceToken(secret: string, address: DeviceAddress, token: string): boolean {
  const expected = Buffer.from(deviceToken(secret, address));
  const given = Buffer.from(token);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/**
 * The one MQTT client id a device's persistent session lives under. A broker binds it to
 * the device's identity, so no other identity can resume or take over that session.
 */
export const deviceClientId = (address: DeviceAddress): string => `${address.tenant}.${address.device}`;
