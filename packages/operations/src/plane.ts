import type { AuditSource, DeviceDirectory, RequestLedger } from '@arteria/ports';
import type { DeadLetterDesk, RefusalLog } from '@arteria/ingest';
import type { MetricHistory } from '@arteria/telemetry';
import type { DashboardData, StageLatency } from './http/dashboard-api.js';
import { readRequestView } from './http/request-view.js';

export interface DashboardSources {
  devices: Pick<DeviceDirectory, 'list'>;
  ledger: RequestLedger;
  audit: AuditSource;
  /** Checks a chain record's signature where the platform's key is at hand. */
  verifyRecord?: (hash: string, signature: string) => boolean;
  history: MetricHistory;
  desk: DeadLetterDesk;
  /** Latency by stage: the history's own samples in one process, the shared ledger's recent results in a cluster. */
  latency: () => Promise<StageLatency[]>;
  /** Requests refused at admission, where this process admits them. */
  refusals?: Pick<RefusalLog, 'summary'>;
  /** Replay from the page, where this process has the admission rules to replay with. */
  replay: boolean;
}

/**
 * What the operations plane serves on its dashboard, from the parts of the process that
 * serves it: the embedded platform and the cluster's dashboard role both build it here.
 */
export function buildDashboard(s: DashboardSources): DashboardData {
  const { desk, refusals } = s;
  return {
    devices: () => s.devices.list(),
    recent: (limit) => s.ledger.recent(limit),
    latency: s.latency,
    history: () => s.history.snapshot(),
    request: (id) => readRequestView(s.ledger, s.audit, id, s.verifyRecord),
    ...(refusals === undefined ? {} : { refusals: (limit: number) => refusals.summary(limit) }),
    deadLetters: { list: (limit) => desk.list(limit), show: (taskId) => desk.show(taskId), ...(s.replay ? { replay: (taskId: string) => desk.replay(taskId) } : {}) },
  };
}
