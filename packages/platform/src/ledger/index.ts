export type { RequestLedger, LedgerEntry, LedgerCounts, AcceptedRequest } from './request-ledger.js';
export { SqliteRequestLedger, SqliteRequestLedgerOptions } from './sqlite-ledger.js';
