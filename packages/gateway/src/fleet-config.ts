import { ConfigV1, decodePayload, type ReportedConfigV1 } from '@arteria/protocol';
import { errorFields, type GatewayLogger } from './log.js';

/** The version a config payload claims, even when the rest of it is invalid (to report the failure). */
function claimedVersion(payload: Buffer): number | undefined {
  try {
    const raw: unknown = JSON.parse(payload.toString('utf8'));
    const version = (raw as { version?: unknown } | null)?.version;
    return typeof version === 'number' && Number.isInteger(version) && version >= 0 ? version : undefined;
  } catch {
    return undefined; // not JSON: nothing to report against
  }
}

/**
 * Reads the fleet config the platform retained on the device's config topic. Returns it
 * when valid; either way says what should be reported on `config/reported`.
 */
export function readFleetConfig(payload: Buffer, logger: GatewayLogger): { config?: ConfigV1; report?: ReportedConfigV1 } {
  try {
    const config = decodePayload(ConfigV1, payload);
    return { config, report: { v: 1, version: config.version, applied: true } };
  } catch (err) {
    logger.warn('ignoring an invalid fleet config', errorFields(err));
    const version = claimedVersion(payload);
    if (version === undefined) return {};
    return { report: { v: 1, version, applied: false, error: (err as Error).message.slice(0, 2000) } };
  }
}
