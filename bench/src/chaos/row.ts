import type { ChaosCluster } from './cluster.js';
import type { Fault } from './faults.js';
import { sleep, until } from './net.js';

/** One line of bench/results/chaos.json. */
export interface ChaosRow {
  fault: string;
  /** The request ids sent (not written to chaos.json). */
  ids?: string[];
  sent: number;
  /** Requests with at least one result at the device's plain MQTT subscriber. */
  delivered: number;
  lost: number;
  /** Requests delivered more than once plus requests computed more than once. */
  duplicateEffects: number;
  /** Requests the platform's results reached more than once (DUP copies not counted). */
  deliveredMoreThanOnce: number;
  computedMoreThanOnce: number;
  /**
   * Copies the broker sent again with DUP set (MQTT QoS 1 is at least once: after a broker
   * crash, what it sent in its last unsaved second). Devices drop them by request id.
   */
  brokerResent: number;
  /**
   * Requests whose delivered result does not carry the digest of the result the ledger
   * holds: the provenance record would not describe the answer the device acted on.
   */
  ledgerMismatch: number;
  /** Results for no request sent, and results whose status is not ok. */
  unexpected: number;
  /** Longest time from a request's first publish to its first result. */
  maxLatencyMs: number;
  /** From the heal (broken part back) until every request sent before it was answered. */
  recoveryMs: number;
  /** Requests sent and not yet answered when the fault healed (what recovery is measured over). */
  pendingAtHeal: number;
}

/** Sends the fault's load, injects the fault, waits for answers, then counts. */
export async function runFault(cluster: ChaosCluster, fault: Fault, log: (line: string) => void = () => undefined): Promise<ChaosRow> {
  const ids: string[] = [];
  const devices = cluster.options.devices;
  const unexpectedBefore = cluster.devices.unexpected;
  const started = Date.now();
  const load = (async () => {
    for (let i = 0; i < fault.requests; i++) {
      const due = started + (fault.loadMs * i) / fault.requests;
      if (due > Date.now()) await sleep(due - Date.now());
      ids.push(await cluster.devices.send(`dev${(i % devices) + 1}`, fault.frames ?? 1));
    }
  })();
  await sleep(Math.max(0, started + fault.atMs - Date.now()));
  log(`${fault.name}: injecting after ${ids.length} requests`);
  await fault.inject(cluster);
  const healAt = Date.now();
  const pendingAtHeal = ids.filter((id) => cluster.devices.deliveries.get(id)?.firstResultAt === undefined);
  log(`${fault.name}: healed, ${pendingAtHeal.length} requests unanswered`);
  await load;
  const answered = (): boolean => ids.every((id) => cluster.devices.deliveries.get(id)?.firstResultAt !== undefined);
  await until(() => (answered() ? true : undefined), 'every request answered', Math.max(0, healAt + fault.answerWithinMs - Date.now()) + 1).catch(() => undefined);
  // Late copies: a stale request or a redelivered task would show up within a resend or two.
  await sleep(Math.max(3_000, cluster.options.resendMs * 2));
  const computed = await cluster.computations();
  const digests = await cluster.ledgerDigests(ids);
  let ledgerMismatch = 0;
  let delivered = 0;
  let deliveredTwice = 0;
  let brokerResent = 0;
  let computedTwice = 0;
  let notOk = 0;
  let maxLatencyMs = 0;
  let lastRecovery = healAt;
  for (const id of ids) {
    const d = cluster.devices.deliveries.get(id);
    if (d === undefined) continue;
    if (d.delivered > 0) delivered += 1;
    brokerResent += d.brokerResent;
    if (d.delivered - d.brokerResent > 1) {
      deliveredTwice += 1;
      const at = (t: number): number => Math.round(t - healAt);
      log(`${fault.name}: ${id} delivered ${d.delivered} times (${d.statuses.join(', ')}) at ${d.deliveredAt.map(at).join(', ')} ms from the heal; sent at ${at(d.sentAt)}, resent at ${d.resentAt.map(at).join(', ') || 'never'}`);
    }
    if ((computed.get(d.sopInstanceUid) ?? 0) > 1) computedTwice += 1;
    if (d.status !== undefined && d.status !== 'ok') notOk += 1;
    if (d.first !== undefined && (d.first.recordHash === undefined || d.first.recordHash !== digests.get(id))) {
      ledgerMismatch += 1;
      log(`${fault.name}: ${id} delivered with digest ${d.first.recordHash ?? 'none'}, the ledger holds ${digests.get(id) ?? 'none'}`);
    }
    if (d.firstResultAt !== undefined) {
      maxLatencyMs = Math.max(maxLatencyMs, d.firstResultAt - d.sentAt);
      if (pendingAtHeal.includes(id)) lastRecovery = Math.max(lastRecovery, d.firstResultAt);
    }
  }
  return {
    fault: fault.name,
    ids,
    sent: ids.length,
    delivered,
    lost: ids.length - delivered,
    duplicateEffects: deliveredTwice + computedTwice,
    deliveredMoreThanOnce: deliveredTwice,
    computedMoreThanOnce: computedTwice,
    brokerResent,
    ledgerMismatch,
    unexpected: cluster.devices.unexpected - unexpectedBefore + notOk,
    maxLatencyMs: Math.round(maxLatencyMs),
    recoveryMs: Math.round(lastRecovery - healAt),
    pendingAtHeal: pendingAtHeal.length,
  };
}
