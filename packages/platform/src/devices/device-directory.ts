import { StatusV1, decodePayload, type ParsedTopic } from '@arteria/protocol';

export interface DeviceRecord {
  tenant: string;
  device: string;
  state: 'online' | 'offline';
  lastSeen: number;
  inProcedure: boolean;
  gatewayVersion: string | undefined;
}

/**
 * What the platform knows of each device from its status messages. The count of devices
 * in a procedure is the autoscaler's leading indicator.
 */
export class DeviceDirectory {
  readonly #devices = new Map<string, DeviceRecord>();

  /** Records a status message; returns false when the payload is not a valid StatusV1. */
  record(topic: ParsedTopic, payload: Buffer): boolean {
    let status: StatusV1;
    try {
      status = decodePayload(StatusV1, payload);
    } catch {
      return false;
    }
    this.#devices.set(`${topic.tenant}/${topic.device}`, {
      tenant: topic.tenant,
      device: topic.device,
      state: status.state,
      lastSeen: status.at,
      inProcedure: status.state === 'online' && status.inProcedure === true,
      gatewayVersion: status.gatewayVersion,
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
