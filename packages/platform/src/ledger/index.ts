export type { RequestLedger, LedgerEntry, LedgerCounts, AcceptedRequest, ResultProvenance } from './request-ledger.js';
export { SqliteRequestLedger, SqliteRequestLedgerOptions } from './sqlite-ledger.js';
export { auditLedger, type AuditSource, type AuditReport, type AuditFinding, type AuditProblem, type IndexEntry } from './audit.js';
export { GENESIS_HASH, nextRecord, completedBody, type ChainRecord, type ChainKind } from './chain.js';
export { LedgerSigner, LEDGER_KEY_FILE, loadOrCreateLedgerSigner, readTrustedKey, recordVerifier, type Checkpoint } from './checkpoint.js';
export { provenanceOf, type Provenance } from './provenance.js';
