import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ChaosCluster } from './cluster.js';
import { FAULTS, type Fault } from './faults.js';
import { runFault, type ChaosRow } from './row.js';

/**
 * `npm run chaos [name ...]`: every fault row (or the named ones, keys of FAULTS) on a
 * fresh cluster each, a table on stdout, the rows in bench/results/chaos.json.
 * A row passes with lost = 0 and no duplicate effect.
 */
const RESULTS = fileURLToPath(new URL('../../results/', import.meta.url));

async function main(): Promise<number> {
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !(n in FAULTS));
  if (unknown.length > 0) {
    process.stderr.write(`unknown fault row(s) ${unknown.join(', ')}; known: ${Object.keys(FAULTS).join(', ')}\n`);
    return 2;
  }
  const chosen: Fault[] = (names.length > 0 ? names : Object.keys(FAULTS)).map((n) => FAULTS[n as keyof typeof FAULTS]);
  const rows: ChaosRow[] = [];
  const broken: string[] = [];
  for (const fault of chosen) {
    const cluster = await ChaosCluster.start({ ingests: 2, workers: 2, devices: 4, resendMs: 5_000, ...fault.cluster });
    try {
      // A row that cannot run here (the disk-full row mounts a tmpfs: root only) fails alone.
      const row = await (fault.run ?? runFault)(cluster, fault, (line) => process.stderr.write(`${line}\n`)).catch((err: unknown) => {
        broken.push(fault.name);
        process.stderr.write(`${fault.name}: could not run: ${err instanceof Error ? err.message : String(err)}\n`);
        return undefined;
      });
      if (row === undefined) continue;
      const { ids: _ids, repeatedAcrossKillIds: _repeated, ...line } = row;
      rows.push(line);
      if (row.lost + row.duplicateEffects + row.unexpected + row.ledgerMismatch > 0) {
        // What the processes said, to find out why.
        await mkdir(RESULTS, { recursive: true });
        const logs = [...cluster.ingests, ...cluster.workers].map((p) => `== ${p.instanceId}\n${p.output.join('')}`).join('\n');
        await writeFile(`${RESULTS}chaos-${names.length > 0 ? (names[chosen.indexOf(fault)] ?? 'row') : Object.keys(FAULTS)[chosen.indexOf(fault)] ?? 'row'}.log`, logs);
      }
    } finally {
      await cluster.close();
    }
    printTable(rows);
  }
  await mkdir(RESULTS, { recursive: true });
  // Named rows replace their earlier figures; the other rows measured before are kept.
  const earlier = names.length > 0 ? await readRows(`${RESULTS}chaos.json`) : [];
  const merged = [...earlier.filter((r) => !rows.some((n) => n.fault === r.fault)), ...rows];
  await writeFile(`${RESULTS}chaos.json`, `${JSON.stringify({ measuredAt: new Date().toISOString(), rows: merged }, null, 2)}\n`);
  return broken.length === 0 && rows.every((r) => r.lost === 0 && r.duplicateEffects === 0 && r.unexpected === 0 && r.ledgerMismatch === 0) ? 0 : 1;
}

/** The rows of an earlier chaos.json (none when there is none). */
async function readRows(file: string): Promise<ChaosRow[]> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { rows?: ChaosRow[] };
    return Array.isArray(parsed.rows) ? parsed.rows : [];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function printTable(rows: readonly ChaosRow[]): void {
  const head = ['fault', 'sent', 'delivered', 'lost', 'dup.delivered', 'repeat.kill', 'dup.computed', 'broker.resent', 'ledger≠', 'unexpected', 'maxLatencyMs', 'recoveryMs', 'pending@heal'];
  const lines = rows.map((r) => [r.fault, r.sent, r.delivered, r.lost, r.deliveredMoreThanOnce, r.repeatedAcrossKill, r.computedMoreThanOnce, r.brokerResent, r.ledgerMismatch, r.unexpected, r.maxLatencyMs, r.recoveryMs, r.pendingAtHeal].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]?.length ?? 0)));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  process.stdout.write(`\n${fmt(head)}\n${lines.map(fmt).join('\n')}\n`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
