import { createHash } from 'node:crypto';

/**
 * Tenant and device ids are MQTT topic segments and object-key segments, so they are
 * restricted to characters that cannot act as wildcards (+ #), separators (/), or path
 * tricks (. ..), and cannot start with $ (broker-reserved topics).
 */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const isValidId = (value: string): boolean => ID_PATTERN.test(value);

export interface RequestIdParts {
  tenant: string;
  device: string;
  /** DICOM SOP Instance UID of the run (after de-identification, as the platform sees it). */
  instanceUid: string;
  /** SHA-256 (hex) of the uploaded object. */
  sha256: string;
  /** Algorithm spec as requested (`name@range`): one run may be sent to several algorithms. */
  algorithm: string;
  /** The inputs' `s3://` URIs, in request order: the same bytes at another address are another request. */
  inputUris: readonly string[];
}

/**
 * A stable request id: the same device sending the same content of the same instance,
 * stored at the same address, to the same algorithm always yields the same id, so a
 * resend after a crash or a lost ack is recognised as the same request. The input URIs
 * are covered so that a request naming another object (say, a copy of another device's
 * run) can never be answered with a result computed for the first.
 */
export function requestId(parts: RequestIdParts): string {
  const digest = createHash('sha256')
    .update([parts.tenant, parts.device, parts.instanceUid, parts.sha256.toLowerCase(), parts.algorithm, ...parts.inputUris].join('\n'))
    .digest('hex');
  return `r${digest.slice(0, 31)}`;
}

export const REQUEST_ID_PATTERN = /^r[0-9a-f]{31}$/;

/** The request id of a rejection for a message the platform could not read well enough to name what it answers. */
export const UNREADABLE_REQUEST_ID = 'unknown';
