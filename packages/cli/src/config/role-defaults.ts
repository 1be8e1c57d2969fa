/** The processes of a cluster; each has its own default port so that they can share a machine. */
export type ClusterRole = 'ingest' | 'worker' | 'autoscaler' | 'dashboard';

/**
 * Default HTTP port (/readyz, /healthz, /metrics, /api/status) of each role. The dashboard
 * keeps `arteria up`'s 18832 so its address is the one operators know; docs/cluster.md
 * has the whole table. Several ingest or worker processes on one machine each need their
 * own `--http-port` (`arteria cluster up` assigns them from these bases).
 */
export const ROLE_HTTP_PORTS: Readonly<Record<ClusterRole, number>> = Object.freeze({
  dashboard: 18832,
  autoscaler: 18835,
  ingest: 18840,
  worker: 18850,
});

/** Config defaults that differ by role, for `loadConfig({ defaults })`. */
export function roleDefaults(role: ClusterRole): Record<string, unknown> {
  return { 'http.port': ROLE_HTTP_PORTS[role] };
}

export function isClusterRole(name: string): name is ClusterRole {
  return Object.hasOwn(ROLE_HTTP_PORTS, name);
}
