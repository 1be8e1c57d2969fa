import type { ErrorCode } from '@arteria/protocol';

/**
 * What a broker refused, and from whom. Each becomes one structured log line, so an
 * operator (or a SIEM) can follow an identity or a source address across attempts.
 */
export type SecurityEventKind =
  /** Credentials missing, wrong, expired or revoked; or no valid client certificate. */
  | 'login_refused'
  /** Valid credentials with a client id that is not the identity's own: a session takeover attempt. */
  | 'client_id_refused'
  /** A publish or subscribe outside the identity's own topics. */
  | 'acl_denied'
  /** A client certificate on the revocation list, or a revoked token. */
  | 'credential_revoked'
  /** A packet whose header declared more bytes than the broker takes: the connection is closed before it is read. */
  | 'packet_refused';

export interface SecurityEvent {
  event: SecurityEventKind;
  /** The identity the client proved (`tenant/device`, `service:name`) or, when it proved none, the one it claimed. */
  identity: string;
  /** Whether `identity` was proven (false: only claimed). */
  authenticated: boolean;
  clientId: string;
  /** Remote address and port of the connection. */
  address: string;
  reason: string;
  /** Topic of a denied publish or subscribe. */
  topic?: string;
  /** The typed reason, where there is one (CREDENTIAL_EXPIRED, DEVICE_REVOKED, NOT_AUTHORIZED). */
  code?: ErrorCode;
}

export type SecurityEventSink = (event: SecurityEvent) => void;

/** The structured line a security event is logged as (one JSON object, `type: "security"`). */
export const securityEventLine = (event: SecurityEvent, at: Date = new Date()): string => JSON.stringify({ at: at.toISOString(), type: 'security', ...event });
