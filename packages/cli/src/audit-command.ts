import { existsSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { NatsRequestLedger, readNatsAuth } from '@arteria/engine-nats';
import { SqliteRequestLedger } from '@arteria/engine-sqlite';
import { auditLedger, provenanceOf, readAuditKeys, recordVerifier as recordVerifierFor, type AuditReport, type AuditSource, type Provenance } from '@arteria/ports';
import { ledgerKeyFile, sqliteLedgerPath } from '@arteria/platform';
import { ArteriaError, REQUEST_ID_PATTERN, STAGES, toArteriaError } from '@arteria/protocol';
import { loadConfig } from './config/load.js';

export const AUDIT_HELP = `arteria audit verify [options] [config flags]      check the ledger's hash chain, signatures and checkpoints;
                                                  names every record changed, removed or reordered (exit 1)
arteria audit show <request-id> [options] [config flags]
                                                  a result's provenance: device, inputs (SHA-256), algorithm
                                                  version and digest, model, worker, timings, result hash
  --key <pem>     the platform's ledger key (private or public PEM); default ledger.signingKeyFile.
                  A public key checks records up to the newest signed checkpoint; the
                  private key checks every record's MAC too
  --json          print JSON
  (config flags as for the platform roles, e.g. --data-dir .arteria or --config cluster.yaml)`;

interface OpenedAudit {
  source: AuditSource;
  get(requestId: string): Promise<unknown>;
  close(): Promise<void>;
}

export async function auditCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help') {
    process.stdout.write(`${AUDIT_HELP}\n`);
    return 0;
  }
  if (sub !== 'verify' && sub !== 'show') throw new ArteriaError('CONFIG_INVALID', `unknown audit command ${JSON.stringify(sub)}\n\n${AUDIT_HELP}`);
  // `show` takes the request id first; --key and --json are ours; the rest are config flags.
  const args = [...rest];
  const id = sub === 'show' ? args.shift() : undefined;
  const json = args.includes('--json');
  const keyAt = args.indexOf('--key');
  const keyFlag = keyAt >= 0 ? args[keyAt + 1] : undefined;
  if (keyAt >= 0 && keyFlag === undefined) throw new ArteriaError('CONFIG_INVALID', '--key needs a file');
  const configArgv = args.filter((a, i) => a !== '--json' && (keyAt < 0 || (i !== keyAt && i !== keyAt + 1)));
  const { config } = await loadConfig({ argv: configArgv, env: process.env });
  const keyFile = keyFlag ?? ledgerKeyFile(config);
  const keys = existsSync(keyFile) ? await readAuditKeys(keyFile) : undefined;
  const trusted: KeyObject | undefined = keys?.trusted;
  const macKey = keys?.macKey;
  if (trusted === undefined && keyFlag !== undefined) throw new ArteriaError('CONFIG_INVALID', `--key ${keyFile}: no such file`);
  const opened = await openForAudit(config);
  try {
    if (sub === 'verify') {
      const report = await auditLedger(opened.source, trusted, macKey === undefined ? {} : { macKey });
      process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, trusted !== undefined));
      return report.ok ? 0 : 1;
    }
    if (id === undefined || !REQUEST_ID_PATTERN.test(id)) throw new ArteriaError('CONFIG_INVALID', `audit show needs a request id (r + 31 hex digits), got ${JSON.stringify(id ?? '')}`);
    const records = await opened.source.chainOf(id);
    if (records.length === 0) throw new ArteriaError('CONFIG_INVALID', `request ${id} is not in the ledger`);
    const verifier = trusted === undefined ? undefined : recordVerifierFor(trusted, macKey);
    const provenance = provenanceOf(id, records, verifier);
    // The lookup side must agree with the chain, as it must before a replay.
    const served = await opened.get(id).then(
      () => ({ ok: true as const }),
      (err: unknown) => ({ ok: false as const, message: toArteriaError(err).message }),
    );
    process.stdout.write(json ? `${JSON.stringify({ ...provenance, servedIntact: served.ok }, null, 2)}\n` : formatProvenance(provenance, served));
    return served.ok && provenance.records.every((r) => r.intact) ? 0 : 1;
  } finally {
    await opened.close();
  }
}

async function openForAudit(config: Awaited<ReturnType<typeof loadConfig>>['config']): Promise<OpenedAudit> {
  if (config.ledger.kind === 'nats') {
    const auth = await readNatsAuth(config.nats);
    const servers = config.queue.natsServers.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const ledger = await NatsRequestLedger.open({ servers, stream: config.ledger.natsStream, connectionName: `arteria-audit-${config.instanceId}`, checkpointIntervalMs: 0, ...(auth ? { auth } : {}) });
    return { source: ledger.auditSource(), get: (id) => ledger.get(id), close: () => ledger.close() };
  }
  const file = sqliteLedgerPath(config);
  if (!existsSync(file)) throw new ArteriaError('CONFIG_INVALID', `no ledger at ${file} (set --data-dir or ledger.path)`);
  const ledger = new SqliteRequestLedger({ path: file, checkpointIntervalMs: 0 });
  return { source: ledger.auditSource(), get: (id) => ledger.get(id), close: () => ledger.close() };
}

function formatReport(r: AuditReport, keyed: boolean): string {
  const lines = [
    `${r.ok ? 'ok' : 'TAMPERED'}: ${r.records} records, head ${r.headSeq} (${r.headHash.slice(0, 16)}…), ${r.checkpoints} checkpoints, signed through record ${r.signedThrough}`,
  ];
  if (!keyed) lines.push('warning: no ledger key found; signatures were not checked (pass --key)');
  if (r.uncheckedTail > 0) {
    lines.push(`warning: ${r.uncheckedTail} records after the newest checkpoint (record ${r.signedThrough}) carry MACs that only the private key checks; pass the private key file (--key) or audit again after the next checkpoint`);
  }
  for (const f of r.findings) lines.push(`  ${f.problem}: ${f.message}`);
  return `${lines.join('\n')}\n`;
}

function formatProvenance(p: Provenance, served: { ok: boolean; message?: string }): string {
  const lines = [`request   ${p.requestId}`, `device    ${p.tenant ?? '?'}/${p.device ?? '?'}`];
  if (p.requested !== undefined) lines.push(`requested ${p.requested}`);
  for (const input of p.inputs) lines.push(`input     ${input.uri}  sha256:${input.sha256}  ${input.size} bytes`);
  if (p.algorithm !== undefined) {
    lines.push(`algorithm ${p.algorithm.name} ${p.algorithm.version}  ${p.algorithm.digest}`);
    if (p.algorithm.model !== undefined) lines.push(`model     ${p.algorithm.model.name}  ${p.algorithm.model.digest}`);
  }
  if (p.worker !== undefined) lines.push(`worker    ${p.worker}`);
  if (p.status !== undefined) lines.push(`status    ${p.status}${p.errorCode !== undefined ? ` (${p.errorCode})` : ''}`);
  if (p.resultHash !== undefined) lines.push(`result    ${p.resultHash}`);
  for (const stage of STAGES) {
    const at = p.timings[stage];
    if (at !== undefined) lines.push(`  ${stage.padEnd(16)} ${new Date(at).toISOString()}`);
  }
  for (const r of p.records) lines.push(`record    ${r.seq} ${r.kind}  ${r.hash}  ${r.intact ? 'intact' : 'NOT INTACT'}`);
  lines.push(served.ok ? 'ledger    the entry served on a resend matches its chain records' : `ledger    TAMPERED: ${served.message ?? ''}`);
  return `${lines.join('\n')}\n`;
}
