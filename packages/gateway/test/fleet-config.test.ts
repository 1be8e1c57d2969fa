import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { ConfigV1, ReportedConfigV1, StatusV1, decodePayload, deviceTopic, encodePayload, type SegmentV1 } from '@arteria/protocol';
import { FleetConfigManager, Gateway, validateFleetConfig, type ActiveConfig } from '@arteria/gateway';
import { Responder, gatewayOptions, memoryLogger, objectBytes, startServers, type Servers } from './helpers.js';
import { phiRun, readDataset, value } from '@arteria/testing';

let servers: Servers;
let responder: Responder;
let platform: MqttClient;
const reported: ReportedConfigV1[] = [];
const address = { tenant: 'acme', device: 'fleet-1' };

beforeAll(async () => {
  servers = await startServers();
  responder = await Responder.start(servers);
  platform = connect(servers.mqttUrl, { protocolVersion: 4, clientId: 'fleet-observer', clean: true });
  await new Promise<void>((resolve) => platform.once('connect', () => resolve()));
  platform.on('message', (topic, payload) => {
    if (topic.endsWith('/config/reported')) reported.push(decodePayload(ReportedConfigV1, payload));
  });
  await platform.subscribeAsync(deviceTopic(address, 'config/reported'), { qos: 1 });
});

afterAll(async () => {
  await platform?.endAsync(true);
  await responder?.close();
  await servers?.close();
});

async function push(config: ConfigV1 | Record<string, unknown>): Promise<ReportedConfigV1> {
  const before = reported.length;
  await platform.publishAsync(deviceTopic(address, 'config'), encodePayload(config), { qos: 1, retain: true });
  await vi.waitFor(() => expect(reported.length).toBeGreaterThan(before), { timeout: 20_000, interval: 10 });
  return reported.at(-1) as ReportedConfigV1;
}

/** Offers configs to `device` as the platform does (retained) and waits for each report. */
async function configOfferer(device: { tenant: string; device: string }, clientId: string): Promise<{ offer: (config: ConfigV1) => Promise<ReportedConfigV1>; observer: MqttClient }> {
  const seen: ReportedConfigV1[] = [];
  const observer = connect(servers.mqttUrl, { protocolVersion: 4, clientId, clean: true });
  await new Promise<void>((resolve) => observer.once('connect', () => resolve()));
  observer.on('message', (_topic, payload) => seen.push(decodePayload(ReportedConfigV1, payload)));
  await observer.subscribeAsync(deviceTopic(device, 'config/reported'), { qos: 1 });
  const offer = async (config: ConfigV1): Promise<ReportedConfigV1> => {
    const before = seen.length;
    await observer.publishAsync(deviceTopic(device, 'config'), encodePayload(config), { qos: 1, retain: true });
    await vi.waitFor(() => expect(seen.length).toBeGreaterThan(before), { timeout: 15_000, interval: 10 });
    return seen.at(-1) as ReportedConfigV1;
  };
  return { offer, observer };
}

const xa = { sopClassUid: '1.2.840.10008.5.1.4.1.1.12.1', seriesDescription: 'LCA', protocolName: 'Coro', numberOfFrames: 60 };
const good: ConfigV1 = {
  v: 1,
  version: 1,
  algorithms: ['contrast-injection@^1', 'vessel-map@^2'],
  routes: [{ seriesDescription: 'roadmap', algorithms: ['vessel-map@^2'] }, { maxFrames: 1, algorithms: [] }],
  deidentification: { retainDeviceIdentity: false },
  uploadBandwidthBytesPerSecond: 50_000_000,
};

describe('remote configuration', () => {
  it('applies a pushed config, reports it, rejects a bad one keeping the previous, and keeps it across a restart', async () => {
    const options = gatewayOptions(servers, address.device, { deidentification: { enabled: true, remoteProfile: 'accept' } });
    const gateway = new Gateway(options, { logger: memoryLogger() });
    await gateway.start();
    try {
      const applied = await push(good);
      expect(applied).toMatchObject({ version: 1, applied: true, activeVersion: 1, active: good });
      expect(gateway.route({ ...xa, seriesDescription: 'Roadmap LAO' })).toEqual(['vessel-map@^2']);
      expect(gateway.route({ ...xa, numberOfFrames: 1 })).toEqual([]); // single frames are not sent
      expect(gateway.route(xa)).toEqual(['contrast-injection@^1']);
      // The pushed de-identification profile is the one in effect: device identity removed.
      const result = await gateway.send({ bytes: phiRun({ seed: 5, studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.5', sopInstanceUid: '1.2.3.4.5.6' }), name: 'run.dcm' });
      const request = responder.seen.find((s) => s.request.id === result.requestId)?.request;
      const uploaded = readDataset(await objectBytes(servers.s3, request?.inputs[0]?.uri ?? '')).ds;
      expect(uploaded['00081010']).toBeUndefined();
      expect(value(uploaded, '00120062')).toBe('YES');

      // A route naming an algorithm that is not enabled: refused before anything changes.
      const bad = await push({ ...good, version: 2, routes: [{ protocolName: 'Coro', algorithms: ['stenosis@^1'] }] });
      expect(bad).toMatchObject({ version: 2, applied: false, activeVersion: 1 });
      expect(bad.error).toMatch(/stenosis@\^1, which is not among the enabled algorithms/);
      expect(gateway.route({ ...xa, seriesDescription: 'Roadmap' })).toEqual(['vessel-map@^2']);
      // A broken expression and an invalid de-identification option are refused too.
      expect(await push({ ...good, version: 3, routes: [{ seriesDescription: '(', algorithms: [] }] })).toMatchObject({ applied: false, activeVersion: 1 });
      expect(await push({ ...good, version: 4, deidentification: { burnedInAnnotation: { policy: 'mask', regions: [] } } })).toMatchObject({ applied: false, activeVersion: 1 });
      expect(gateway.activeConfig?.version).toBe(1);
    } finally {
      await gateway.close();
    }

    // After a restart the last good config is in effect at once; the retained bad one is refused again.
    const before = reported.length;
    const again = new Gateway(options, { logger: memoryLogger() });
    await again.start();
    try {
      expect(again.activeConfig?.version).toBe(1);
      await vi.waitFor(() => expect(reported.length).toBeGreaterThan(before), { timeout: 20_000, interval: 10 });
      expect(reported.at(-1)).toMatchObject({ version: 4, applied: false, activeVersion: 1 });
      const fixed = await push({ ...good, version: 5, uploadBandwidthBytesPerSecond: undefined });
      expect(fixed).toMatchObject({ version: 5, applied: true, activeVersion: 5 });
      expect((await push({ ...good, version: 3 })).applied).toBe(false); // older than the active version
    } finally {
      await again.close();
    }
  });
});

describe('configuration that cannot brick a site', () => {
  it('rolls back a config whose route the platform would refuse, reports why, and keeps sending runs', async () => {
    const device = { tenant: 'acme', device: 'fleet-probe' };
    const { offer, observer } = await configOfferer(device, 'probe-observer');
    responder.unknownAlgorithms.add('does-not-exist@^1');
    const gateway = new Gateway(gatewayOptions(servers, device.device, { configConfirmTimeoutMs: 2_000 }), { logger: memoryLogger() });
    await gateway.start();
    try {
      const base: ConfigV1 = { v: 1, version: 1, algorithms: ['contrast-injection@^1'] };
      expect(await offer(base)).toMatchObject({ version: 1, applied: true });
      const probesBefore = responder.probes.length;

      // Valid on its face (the route names an enabled algorithm), but the platform knows no such algorithm.
      const broken: ConfigV1 = { v: 1, version: 2, algorithms: ['contrast-injection@^1', 'does-not-exist@^1'], routes: [{ protocolName: 'Coro', algorithms: ['does-not-exist@^1'] }] };
      const refused = await offer(broken);
      expect(refused).toMatchObject({ version: 2, applied: false, code: 'UNKNOWN_ALGORITHM', activeVersion: 1, active: base });
      expect(refused.error).toMatch(/rolled back: the platform would refuse runs sent to does-not-exist@\^1/);
      expect(responder.probes.slice(probesBefore).map((p) => p.algorithms)).toEqual([['contrast-injection@^1', 'does-not-exist@^1']]);
      expect(gateway.activeConfig?.version).toBe(1);
      expect(gateway.route(xa)).toEqual(['contrast-injection@^1']);

      // Runs sent afterwards go where the previous config sends them, and get their results.
      const result = await gateway.send({ bytes: phiRun({ seed: 31, studyInstanceUid: '1.2.3.31', seriesInstanceUid: '1.2.3.31.1', sopInstanceUid: '1.2.3.31.1.1' }), name: 'run.dcm' });
      expect(result.status).toBe('ok');
      expect(responder.seen.find((s) => s.request.id === result.requestId)?.request.algorithm).toBe('contrast-injection@^1');

      // A platform that does not answer the probe: not confirmed, rolled back as well.
      responder.silentProbes = true;
      expect(await offer({ ...base, version: 3, algorithms: ['contrast-injection@^2'] })).toMatchObject({ version: 3, applied: false, code: 'CONFIG_UNCONFIRMED', activeVersion: 1 });
      responder.silentProbes = false;
      expect(await offer({ ...base, version: 4, algorithms: ['contrast-injection@^2'] })).toMatchObject({ version: 4, applied: true, activeVersion: 4 });
    } finally {
      responder.unknownAlgorithms.delete('does-not-exist@^1');
      responder.silentProbes = false;
      await gateway.close();
      await observer.endAsync(true);
    }
  });
});

describe('heartbeat', () => {
  it('republishes the retained online status, so the platform sees the device alive', async () => {
    const seen: number[] = [];
    const observer = connect(servers.mqttUrl, { protocolVersion: 4, clientId: 'heartbeat-observer', clean: true });
    await new Promise<void>((resolve) => observer.once('connect', () => resolve()));
    observer.on('message', (_topic, payload) => seen.push(decodePayload(StatusV1, payload).at));
    await observer.subscribeAsync(deviceTopic({ tenant: 'acme', device: 'beat-1' }, 'status'), { qos: 1 });
    const gateway = new Gateway(gatewayOptions(servers, 'beat-1', { heartbeatIntervalMs: 50 }), { logger: memoryLogger() });
    await gateway.start();
    try {
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(3), { timeout: 20_000, interval: 10 });
      expect(seen[2]).toBeGreaterThan(seen[0] ?? Infinity);
    } finally {
      await gateway.close();
      await observer.endAsync(true);
    }
  });
});

describe('FleetConfigManager', () => {
  const v = (version: number): Buffer => encodePayload({ ...good, version });

  it('rolls back to the previous config when applying or confirming the new one fails', async () => {
    const applied: (number | undefined)[] = [];
    let failApply = false;
    let failConfirm = false;
    const manager = new FleetConfigManager(
      join(servers.directory, 'manager-config.json'),
      {
        apply: (next: ActiveConfig | undefined) => {
          if (failApply && next?.config.version === 2) throw new Error('cannot apply');
          applied.push(next?.config.version);
        },
        confirm: () => (failConfirm ? Promise.reject(new Error('not connected')) : Promise.resolve()),
      },
      memoryLogger(),
    );
    expect(await manager.offer(v(1))).toMatchObject({ applied: true, activeVersion: 1 });
    failApply = true;
    expect(await manager.offer(v(2))).toMatchObject({ version: 2, applied: false, activeVersion: 1, error: 'rolled back: cannot apply' });
    failApply = false;
    failConfirm = true;
    expect(await manager.offer(v(3))).toMatchObject({ version: 3, applied: false, activeVersion: 1, error: 'rolled back: not connected' });
    expect(applied).toEqual([1, 1, 3, 1]); // 1; 2 failed -> back to 1; 3 applied, not confirmed -> back to 1
    expect(manager.active?.config.version).toBe(1);
    // Not JSON at all: still reported (version 0: none could be read), typed. Cleared retained config: nothing changes.
    expect(await manager.offer(Buffer.from('not json'))).toMatchObject({ version: 0, applied: false, code: 'INVALID_JSON', activeVersion: 1 });
    expect(await manager.offer(Buffer.from('{"v":1,"version":9,"algorithms":"x"}'))).toMatchObject({ version: 9, applied: false, code: 'CONFIG_INVALID', activeVersion: 1 });
    expect(await manager.offer(Buffer.alloc(0))).toBeUndefined();
    // Each refusal has its code: the failed confirmation, an older version, the active version reused with other content.
    expect(await manager.offer(v(4))).toMatchObject({ version: 4, applied: false, code: 'CONFIG_UNCONFIRMED' });
    failConfirm = false;
    expect(await manager.offer(v(0))).toMatchObject({ applied: false, code: 'CONFIG_STALE', activeVersion: 1 });
    expect(await manager.offer(v(1))).toMatchObject({ applied: true, activeVersion: 1 }); // redelivered as it is
    expect(await manager.offer(encodePayload({ ...good, version: 1, algorithms: ['contrast-injection@^1'], routes: [] }))).toMatchObject({ applied: false, code: 'CONFIG_STALE', activeVersion: 1 });
  });

  it('refuses a pushed de-identification profile where the site locked its own, and takes the rest of the config', async () => {
    const applied: (number | undefined)[] = [];
    const manager = new FleetConfigManager(
      join(servers.directory, 'locked-config.json'),
      { apply: (next: ActiveConfig | undefined) => void applied.push(next?.config.version), confirm: () => Promise.resolve() },
      memoryLogger(),
      { acceptDeidentification: false },
    );
    const weaker = encodePayload({ ...good, version: 1, deidentification: { unlistedText: 'keep', scrubKnownIdentifiers: false } });
    const refused = await manager.offer(weaker);
    expect(refused).toMatchObject({ version: 1, applied: false });
    expect(refused?.error).toContain('remoteProfile: refuse');
    expect(applied).toEqual([]);
    const { deidentification: _profile, ...withoutProfile } = good;
    expect(await manager.offer(encodePayload({ ...withoutProfile, version: 2 }))).toMatchObject({ version: 2, applied: true, activeVersion: 2 });
    expect(applied).toEqual([2]);
    expect(manager.active?.deidentification).toBeUndefined(); // the site's own profile stays in effect
    expect(() => validateFleetConfig({ v: 1, version: 3, algorithms: ['a@1'], deidentification: {} }, { acceptDeidentification: false })).toThrow(/remoteProfile/);
    expect(validateFleetConfig({ v: 1, version: 3, algorithms: ['a@1'], deidentification: {} }).deidentification).toBeDefined();
  });

  it('validates routes against the enabled algorithms', () => {
    expect(() => validateFleetConfig({ v: 1, version: 1, algorithms: ['a@1'], routes: [{ algorithms: ['b@1'] }] })).toThrow(/CONFIG_INVALID|not among the enabled/);
    expect(validateFleetConfig({ v: 1, version: 1, algorithms: ['a@1'] }).route(xa)).toBeUndefined();
  });
});

describe('segment encoding from the fleet config', () => {
  it('compresses the segments cut after a config turns it on, and stops once a later config leaves it to the site', async () => {
    const device = { tenant: 'acme', device: 'fleet-encoding' };
    const { offer, observer } = await configOfferer(device, 'encoding-observer');
    const rows = 32;
    const frames = 30;
    const bytes = synthesizeXaRun({ seed: 61, rows, columns: rows, frames, bitsStored: 8 }).bytes;
    const header = bytes.subarray(0, bytes.length - frames * rows * rows);
    const sendRun = async (): Promise<SegmentV1[]> => {
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      await source.push(bytes.subarray(header.length));
      await source.end();
      const result = await source.result;
      expect(result.status).toBe('ok');
      return responder.segmented.filter((s): s is SegmentV1 => s.kind === 'segment' && s.requestId === result.requestId);
    };
    const gateway = new Gateway(gatewayOptions(servers, device.device), { logger: memoryLogger() });
    await gateway.start();
    try {
      expect((await sendRun()).map((s) => s.object.encoding)).toEqual([undefined, undefined, undefined]);
      expect(await offer({ v: 1, version: 1, algorithms: [], segmentEncoding: 'br' })).toMatchObject({ applied: true, activeVersion: 1 });
      expect((await sendRun()).map((s) => s.object.encoding)).toEqual(['br', 'br', 'br']);
      expect(await offer({ v: 1, version: 2, algorithms: [] })).toMatchObject({ applied: true, activeVersion: 2 });
      expect((await sendRun()).map((s) => s.object.encoding)).toEqual([undefined, undefined, undefined]);
    } finally {
      await gateway.close();
      await observer.publishAsync(deviceTopic(device, 'config'), '', { qos: 1, retain: true });
      await observer.endAsync(true);
    }
  }, 60_000);
});
