import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { REVOCATIONS_FILE } from '@arteria/ports';

/** Where `arteria cluster` keeps everything of one local cluster, under its `--dir`. */
export function clusterPaths(dir: string) {
  const root = path.resolve(dir);
  return {
    root,
    state: path.join(root, 'cluster.json'),
    secrets: path.join(root, 'secrets.json'),
    devices: path.join(root, 'devices.json'),
    /** Revoked devices, which ingest refuses (Mosquitto refuses them through its dynamic security plugin). */
    revocations: path.join(root, REVOCATIONS_FILE),
    roleConfig: path.join(root, 'arteria.json'),
    storeCredentials: path.join(root, 'store-credentials.json'),
    broker: path.join(root, 'broker'),
    brokerData: path.join(root, 'broker', 'data'),
    natsConf: path.join(root, 'nats', 'nats.conf'),
    natsStore: path.join(root, 'nats', 'store'),
    objects: path.join(root, 'objects'),
    data: path.join(root, 'data'),
    logs: path.join(root, 'logs'),
    gateways: path.join(root, 'gateways'),
  };
}
export type ClusterPaths = ReturnType<typeof clusterPaths>;

const port = z.number().int().min(1).max(65535);

/** One process `cluster up` started: enough for `down` to stop it and `status` to check it. */
export const ClusterProcess = z.strictObject({
  name: z.string(),
  pid: z.number().int().positive(),
  /** The port it serves (MQTT, S3, NATS, or its HTTP port). */
  port,
  /** HTTP base URL for roles with /readyz. */
  url: z.string().optional(),
  log: z.string(),
});
export type ClusterProcess = z.infer<typeof ClusterProcess>;

/** `cluster.json`: what runs where. Kept after `down` (with no processes) for provisioning. */
export const ClusterState = z.strictObject({
  v: z.literal(1),
  dir: z.string(),
  startedAt: z.string(),
  mqttUrl: z.string(),
  s3Endpoint: z.string(),
  natsUrl: z.string(),
  bucket: z.string(),
  dashboardUrl: z.string(),
  /** Address the broker and the store listen on. */
  host: z.string(),
  /** Mosquitto's OS user (root only where it could not reach the folder). */
  brokerUser: z.string(),
  processes: z.array(ClusterProcess),
});
export type ClusterState = z.infer<typeof ClusterState>;

export async function readState(paths: ClusterPaths): Promise<ClusterState | undefined> {
  let text: string;
  try {
    text = await readFile(paths.state, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = ClusterState.safeParse(JSON.parse(text));
  if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `${paths.state}: not a cluster state file (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data;
}

/** Needs a cluster started once in `dir`: its endpoints go into every device's gateway configuration. */
export async function requireState(paths: ClusterPaths): Promise<ClusterState> {
  const state = await readState(paths);
  if (state === undefined) throw new ArteriaError('CONFIG_INVALID', `no cluster in ${paths.root} (no ${paths.state}); start one with \`arteria cluster up --dir ${paths.root}\``);
  return state;
}

export async function writeState(paths: ClusterPaths, state: ClusterState): Promise<void> {
  const tmp = `${paths.state}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, paths.state);
}

/** Is a process with this pid alive, and is it ours (its command line names the cluster folder)? */
export async function isOurs(pid: number, dir: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A pid can be reused after a reboot: only a process that names our folder is ours.
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
    return cmdline.includes(dir);
  } catch {
    return true; // no /proc (not Linux): trust the pid
  }
}
