import type { ChaosCluster, LedgerFacts } from './cluster.js';
import type { Fault } from './faults.js';
import type { KillRecord } from './role-process.js';
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
  /** Requests the platform's results reached more than once (DUP copies and repeats across a kill not counted). */
  deliveredMoreThanOnce: number;
  /**
   * Requests whose result a process had recorded and published, but not yet noted as
   * published, when it was SIGKILLed: its task's next delivery cannot know the copy left
   * and publishes the recorded result once more (at least once, like the broker's DUP
   * copies; devices drop it by request id). Counted only where the ledger shows exactly
   * that: recorded before the kill ended, the publish noted after it began, two copies.
   */
  repeatedAcrossKill: number;
  /** Those requests' ids (not written to chaos.json). */
  repeatedAcrossKillIds?: string[];
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

/**
 * Whether a request's copies are the one repeat a kill between publishing and noting the
 * publish explains: two copies, the result recorded before a kill's process had exited and
 * its publish noted only after the kill was sent. Anything else is a platform duplicate.
 */
export function isRepeatAcrossKill(copies: number, facts: LedgerFacts | undefined, kills: readonly KillRecord[]): boolean {
  const { completedAt, publishedAt } = facts ?? {};
  if (copies !== 2 || completedAt === undefined || publishedAt === undefined) return false;
  return kills.some((k) => completedAt <= k.exitedAt && publishedAt >= k.sentAt);
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
  const injectedAt = Date.now();
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
  const ledger = await cluster.ledgerEntries(ids);
  const kills = cluster.killsSince(injectedAt);
  const repeatedAcrossKill: string[] = [];
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
    const facts = ledger.get(id);
    if (isRepeatAcrossKill(d.delivered - d.brokerResent, facts, kills)) {
      repeatedAcrossKill.push(id);
      log(`${fault.name}: ${id} delivered twice: recorded and published before a kill, noted as published after it`);
    } else if (d.delivered - d.brokerResent > 1) {
      deliveredTwice += 1;
      const at = (t: number): number => Math.round(t - healAt);
      log(`${fault.name}: ${id} delivered ${d.delivered} times (${d.statuses.join(', ')}) at ${d.deliveredAt.map(at).join(', ')} ms from the heal; sent at ${at(d.sentAt)}, resent at ${d.resentAt.map(at).join(', ') || 'never'}`);
    }
    if ((computed.get(d.sopInstanceUid) ?? 0) > 1) computedTwice += 1;
    if (d.status !== undefined && d.status !== 'ok') notOk += 1;
    if (d.first !== undefined && (d.first.recordHash === undefined || d.first.recordHash !== facts?.recordHash)) {
      ledgerMismatch += 1;
      log(`${fault.name}: ${id} delivered with digest ${d.first.recordHash ?? 'none'}, the ledger holds ${facts?.recordHash ?? 'none'}`);
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
    repeatedAcrossKill: repeatedAcrossKill.length,
    repeatedAcrossKillIds: repeatedAcrossKill,
    computedMoreThanOnce: computedTwice,
    brokerResent,
    ledgerMismatch,
    unexpected: cluster.devices.unexpected - unexpectedBefore + notOk,
    maxLatencyMs: Math.round(maxLatencyMs),
    recoveryMs: Math.round(lastRecovery - healAt),
    pendingAtHeal: pendingAtHeal.length,
  };
}
