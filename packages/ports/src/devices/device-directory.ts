import { ReportedConfigV1, StatusV1, decodePayload, type ParsedTopic } from '@arteria/protocol';

export interface DeviceRecord {
  tenant: string;
  device: string;
  state: 'online' | 'offline';
  lastSeen: number;
  inProcedure: boolean;
  gatewayVersion: string | undefined;
  /** The configuration version the gateway reports in effect (`config/reported`); undefined until it reports one. */
  configVersion?: number | undefined;
  /** The last configuration it was sent and refused, with why. */
  configRefused?: { version: number; error: string } | undefined;
}

/**
 * What the platform knows of each device from its status messages. The count of devices
 * in a procedure is the autoscaler's leading indicator.
 */
export class DeviceDirectory {
  readonly #devices = new Map<string, DeviceRecord>();

  /**
   * Records a status message or a configuration report (by the topic's kind); returns false
   * when the payload does not parse.
   */
  record(topic: ParsedTopic, payload: Buffer): boolean {
    if (topic.kind === 'config/reported') return this.#recordReported(topic, payload);
    let status: StatusV1;
    try {
      status = decodePayload(StatusV1, payload);
    } catch {
      return false;
    }
    const key = `${topic.tenant}/${topic.device}`;
    const known = this.#devices.get(key);
    this.#devices.set(key, {
      ...(known?.configVersion !== undefined ? { configVersion: known.configVersion } : {}),
      ...(known?.configRefused !== undefined ? { configRefused: known.configRefused } : {}),
      tenant: topic.tenant,
      device: topic.device,
      state: status.state,
      lastSeen: status.at,
      inProcedure: status.state === 'online' && status.inProcedure === true,
      gatewayVersion: status.gatewayVersion,
    });
    return true;
  }

  #recordReported(topic: ParsedTopic, payload: Buffer): boolean {
    let reported: ReportedConfigV1;
    try {
      reported = decodePayload(ReportedConfigV1, payload);
    } catch {
      return false;
    }
    const key = `${topic.tenant}/${topic.device}`;
    // A report before any status: the device is known, its state not yet.
    const record = this.#devices.get(key) ?? { tenant: topic.tenant, device: topic.device, state: 'offline', lastSeen: 0, inProcedure: false, gatewayVersion: undefined };
    const active = reported.applied ? reported.version : reported.activeVersion;
    this.#devices.set(key, {
      ...record,
      configVersion: active ?? record.configVersion,
      configRefused: reported.applied ? undefined : { version: reported.version, error: reported.error ?? 'refused' },
    });
    return true;
  }

  list(): DeviceRecord[] {
    return [...this.#devices.values()];
  }

  counts(): { known: number; online: number; inProcedure: number } {
    let online = 0;
    let inProcedure = 0;
    for (const d of this.#devices.values()) {
      if (d.state === 'online') online += 1;
      if (d.inProcedure) inProcedure += 1;
    }
    return { known: this.#devices.size, online, inProcedure };
  }
}
