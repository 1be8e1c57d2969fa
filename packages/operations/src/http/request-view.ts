import { REQUEST_ID_PATTERN, toArteriaError, type ResultV1 } from '@arteria/protocol';
import { type AuditSource, type LedgerEntry, type Provenance, type RequestLedger, provenanceOf } from '@arteria/ports';
import { resultRow, type ResultRow } from './dashboard-api.js';

/** One request as the dashboard's request page shows it. */
export interface RequestView {
  requestId: string;
  /** accepted: queued or running; completed: a result is recorded. */
  state: LedgerEntry['state'] | 'tampered';
  /** The row of the results table: stage durations, algorithm, status. */
  row: ResultRow | null;
  /** The recorded result as the device received it (outputs, error, timings, recordHash). */
  result: ResultV1 | null;
  /** What the hash chain says: inputs and their SHA-256, algorithm version and digest, model, worker, records. */
  provenance: Provenance;
  /** The entry a resend is answered from agrees with its chain records; false names why in `tampered`. */
  servedIntact: boolean;
  tampered?: string;
}

/**
 * Reads one request from the ledger and its chain records, as `arteria audit show` does;
 * undefined when the ledger has no record of it. `verifySignature` checks record signatures
 * where the platform's key is at hand.
 */
export async function readRequestView(
  ledger: Pick<RequestLedger, 'get'>,
  audit: Pick<AuditSource, 'chainOf'>,
  requestId: string,
  verifySignature?: (hash: string, signature: string) => boolean,
): Promise<RequestView | undefined> {
  if (!REQUEST_ID_PATTERN.test(requestId)) return undefined;
  const records = await audit.chainOf(requestId);
  let entry: LedgerEntry | undefined;
  let tampered: string | undefined;
  try {
    entry = await ledger.get(requestId);
  } catch (err) {
    const error = toArteriaError(err);
    if (error.code !== 'LEDGER_TAMPERED') throw error;
    tampered = error.message;
  }
  if (entry === undefined && tampered === undefined && records.length === 0) return undefined;
  return {
    requestId,
    state: tampered !== undefined ? 'tampered' : (entry?.state ?? 'accepted'),
    row: entry ? resultRow(entry) : null,
    result: entry?.result ?? null,
    provenance: provenanceOf(requestId, records, verifySignature),
    servedIntact: tampered === undefined,
    ...(tampered !== undefined ? { tampered } : {}),
  };
}
