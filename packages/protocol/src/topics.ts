import { ArteriaError } from './errors.js';
import { isValidId } from './ids.js';

export const TOPIC_ROOT = 'arteria/v1';

export const TOPIC_KINDS = ['requests', 'results', 'status', 'config', 'config/reported'] as const;
export type TopicKind = (typeof TOPIC_KINDS)[number];

export interface DeviceAddress {
  tenant: string;
  device: string;
}

export interface ParsedTopic extends DeviceAddress {
  kind: TopicKind;
}

function assertId(kind: 'tenant' | 'device', value: string): void {
  if (!isValidId(value)) {
    throw new ArteriaError('INVALID_TOPIC', `${kind} id ${JSON.stringify(value)} must match [a-z0-9][a-z0-9_-]{0,63}`);
  }
}

/** Builds `arteria/v1/{tenant}/{device}/{kind}`; throws INVALID_TOPIC for unsafe ids. */
export function deviceTopic(address: DeviceAddress, kind: TopicKind): string {
  assertId('tenant', address.tenant);
  assertId('device', address.device);
  return `${TOPIC_ROOT}/${address.tenant}/${address.device}/${kind}`;
}

/** Parses a concrete (wildcard-free) device topic; throws INVALID_TOPIC otherwise. */
export function parseDeviceTopic(topic: string): ParsedTopic {
  const parts = topic.split('/');
  if (parts.length < 5 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) {
    throw new ArteriaError('INVALID_TOPIC', `topic ${JSON.stringify(topic)} is not under ${TOPIC_ROOT}/{tenant}/{device}/`);
  }
  const [, , tenant = '', device = '', ...rest] = parts;
  assertId('tenant', tenant);
  assertId('device', device);
  const kind = rest.join('/');
  if (!(TOPIC_KINDS as readonly string[]).includes(kind)) {
    throw new ArteriaError('INVALID_TOPIC', `topic kind ${JSON.stringify(kind)} is not one of ${TOPIC_KINDS.join(', ')}`);
  }
  return { tenant, device, kind: kind as TopicKind };
}

/** Subscription filter for one kind of topic across all devices (platform side only). */
export const allDevicesFilter = (kind: TopicKind): string => `${TOPIC_ROOT}/+/+/${kind}`;
