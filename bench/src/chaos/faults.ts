import { rm } from 'node:fs/promises';
import type { ChaosCluster, ChaosClusterOptions } from './cluster.js';
import { fillDisk, gatewayFault } from './gateway-row.js';
import { sleep } from './net.js';
import { gatewayKillMidUpload } from './upload-row.js';
import type { ChaosRow } from './row.js';

/**
 * One fault row: a known load, and a fault injected while it runs. `inject` breaks
 * something and resolves once the broken part is back (the heal time recovery is
 * measured from).
 */
export interface Fault {
  name: string;
  /** Requests sent, spread evenly over `loadMs`. */
  requests: number;
  loadMs: number;
  /** Time after the load starts at which the fault is injected. */
  atMs: number;
  /** Longest a request may stay unanswered after the heal before the row counts it lost. */
  answerWithinMs: number;
  inject(cluster: ChaosCluster): Promise<void>;
  /** Frames per run (50 ms of work each); default 1. */
  frames?: number;
  /** Cluster settings this row needs (the runner's defaults otherwise). */
  cluster?: Partial<ChaosClusterOptions>;
  /** A row that drives its own load (a real gateway) instead of the simulated devices. */
  run?(cluster: ChaosCluster, fault: Fault, log: (line: string) => void): Promise<ChaosRow>;
}

const ingestKill = (awayS: number): Fault => ({
  name: `ingest SIGKILL, back after ${awayS} s`,
  requests: 80,
  loadMs: 20_000,
  atMs: 4_000,
  answerWithinMs: 30_000,
  async inject(cluster) {
    const victim = cluster.ingests[0];
    if (victim === undefined) throw new Error('no ingest to kill');
    await victim.kill('SIGKILL');
    await sleep(awayS * 1000);
    await victim.start(); // same instance id, as a restarted pod
  },
});

const networkCut = (seconds: number, requests: number, loadMs: number): Fault => ({
  name: `network between devices and platform cut ${seconds} s`,
  requests,
  loadMs,
  atMs: 3_000,
  answerWithinMs: 30_000,
  async inject(cluster) {
    cluster.proxy.cut();
    await sleep(seconds * 1000);
    cluster.proxy.restore();
  },
});

const brokerRestart = (signal: 'SIGTERM' | 'SIGKILL'): Fault => ({
  name: `broker ${signal} and restart, two ingests`,
  requests: 40,
  loadMs: 8_000,
  atMs: 3_000,
  answerWithinMs: 30_000,
  async inject(cluster) {
    await cluster.mosquitto.restart(signal);
  },
});

export const FAULTS = {
  brokerSigterm: brokerRestart('SIGTERM'),
  brokerSigkill: brokerRestart('SIGKILL'),
  // Kept ingest sessions: Mosquitto restores them without their shared subscriptions.
  brokerSigtermKeptSessions: { ...brokerRestart('SIGTERM'), name: 'broker SIGTERM and restart, kept ingest sessions', cluster: { sessionExpiryS: 3_600 } },
  ingestKill10: { ...ingestKill(10), requests: 40, loadMs: 12_000, atMs: 2_000 },
  ingestKill30: ingestKill(30),
  ingestKill60: ingestKill(60),
  natsKill: {
    name: 'nats-server SIGKILL and restart',
    requests: 40,
    loadMs: 8_000,
    atMs: 3_000,
    answerWithinMs: 45_000,
    async inject(cluster) {
      await cluster.nats.kill('SIGKILL');
      await sleep(2_000);
      await cluster.nats.start();
    },
  },
  networkCut60: networkCut(60, 40, 10_000),
  networkCut10: networkCut(10, 20, 6_000),
  brokerRestartDevicesOffline: {
    name: 'broker SIGKILL and restart while devices are offline',
    requests: 20,
    loadMs: 2_000,
    atMs: 2_500,
    answerWithinMs: 30_000,
    frames: 20,
    async inject(cluster) {
      // The devices go offline; their persistent sessions stay on the broker and collect
      // the results published meanwhile.
      cluster.proxy.cut();
      const away = [...cluster.devices.deliveries].filter(([, d]) => d.firstResultAt === undefined).map(([id]) => id);
      await cluster.awaitPublished(away, 60_000);
      await sleep(2_000); // past Mosquitto's autosave (1 s): what it holds for them is on disk
      await cluster.mosquitto.restart('SIGKILL');
      cluster.proxy.restore();
    },
  },
  gatewayKillMidUpload,
  flapping: {
    name: 'network flapping (2 s up, 2 s down) for 30 s',
    requests: 40,
    loadMs: 20_000,
    atMs: 2_000,
    answerWithinMs: 30_000,
    async inject(cluster) {
      cluster.proxy.flap(4_000);
      await sleep(30_000);
      cluster.proxy.stopFlapping();
    },
  },
  burstWorkersPaused: {
    name: '10x burst with workers paused 10 s',
    requests: 100,
    loadMs: 2_000,
    atMs: 0,
    answerWithinMs: 60_000,
    async inject(cluster) {
      for (const w of cluster.workers) w.signal('SIGSTOP');
      await sleep(10_000);
      for (const w of cluster.workers) w.signal('SIGCONT');
    },
  },
  workerKill: {
    name: 'worker SIGKILL mid-task',
    requests: 20,
    loadMs: 4_000,
    atMs: 2_000,
    answerWithinMs: 30_000,
    frames: 20,
    async inject(cluster) {
      const victim = cluster.workers[0];
      if (victim === undefined) throw new Error('no worker to kill');
      await victim.kill('SIGKILL');
      await victim.start();
    },
  },
  objectStoreDown30: {
    name: 'object store unreachable 30 s (uploads and workers)',
    requests: 40,
    loadMs: 10_000,
    atMs: 3_000,
    // A task that kept failing to read its input waits out its retry back-off (up to 30 s).
    answerWithinMs: 120_000,
    async inject(cluster) {
      cluster.storeProxy.cut();
      await sleep(30_000);
      cluster.storeProxy.restore();
    },
  },
  gatewayDiskFull: gatewayFault({
    name: 'gateway disk full 10 s while receiving',
    device: 'gw1',
    runs: 40,
    spacingMs: 500,
    atMs: 4_000,
    answerWithinMs: 60_000,
    outboxFsBytes: 32 * 1024 * 1024,
    async during({ outboxDir }) {
      const filler = await fillDisk(outboxDir);
      await sleep(10_000);
      await rm(filler, { force: true });
    },
  }),
  gatewayClockAhead20m: gatewayFault({
    name: 'gateway clock 20 min ahead',
    device: 'gw1',
    runs: 20,
    spacingMs: 250,
    atMs: 0,
    answerWithinMs: 30_000,
    clockOffsetMs: 20 * 60_000,
    during: () => Promise.resolve(),
  }),
  gatewayClockBehind20m: gatewayFault({
    name: 'gateway clock 20 min behind',
    device: 'gw1',
    runs: 20,
    spacingMs: 250,
    atMs: 0,
    answerWithinMs: 30_000,
    clockOffsetMs: -20 * 60_000,
    during: () => Promise.resolve(),
  }),
} satisfies Record<string, Fault>;
