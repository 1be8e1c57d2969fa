import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { DeidentificationKey, DeidentificationProfile, deidentify, deidentifyFile, parseGatewayOptions, type DeidentificationProfileInput } from '@arteria/gateway';
import { PHI, items, phiRun, readDataset, value, writeColorRun } from '@arteria/testing';

const exec = promisify(execFile);
const key = new DeidentificationKey(Buffer.alloc(32, 7));
const profile = (input: DeidentificationProfileInput = {}): DeidentificationProfile =>
  DeidentificationProfile.parse({ privateTagAllowList: [{ group: '0019', creator: 'ARTERIA SAFE', element: '05' }], ...input });
const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.1';
const SERIES = `${STUDY}.2`;

function series(): { first: Buffer; second: Buffer } {
  const first = phiRun({ seed: 1, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.1` });
  const second = phiRun({ seed: 2, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.2`, references: `${SERIES}.1` });
  return { first, second };
}

describe('de-identification (PS3.15 Annex E)', () => {
  it('by default (a gateway configured with nothing about it): basic profile, no retain option, no PHI, no original UID, locked against fleet pushes', () => {
    const config = parseGatewayOptions({
      tenant: 'acme',
      device: 'cathlab-1',
      token: 't',
      mqttUrl: 'mqtt://127.0.0.1:1883',
      s3: { endpoint: 'http://127.0.0.1:4568', bucket: 'arteria-runs', accessKeyId: 'k', secretAccessKey: 's' },
      outboxPath: '/tmp/outbox.db',
    });
    const { enabled, remoteProfile, profile: defaults } = config.deidentification;
    expect({ enabled, remoteProfile }).toEqual({ enabled: true, remoteProfile: 'refuse' });
    expect(defaults).toMatchObject({ retainDeviceIdentity: false, retainPatientCharacteristics: false, retainLongitudinalTemporalInformationModifiedDates: false, unlistedText: 'remove', keepText: [], privateTagAllowList: [] });
    const { first } = series();
    const station = 'CATHLAB2';
    for (const phi of [...PHI, station]) expect(first.includes(phi), `test run holds ${phi}`).toBe(true);
    const out = deidentify(first, defaults, key);
    for (const phi of [...PHI, station]) expect(out.bytes.includes(phi), `${phi} left the site`).toBe(false);
    for (const uid of [STUDY, SERIES, `${SERIES}.1`]) expect(out.bytes.includes(uid), `${uid} left the site`).toBe(false);
    const { ds } = readDataset(out.bytes);
    expect(ds['00081010']).toBeUndefined(); // Station Name
    expect(value(ds, '00120062')).toBe('YES');
    expect(items(ds, '00120064').map((i) => value(i, '00080100'))).toEqual(['113100']);
  });

  it('removes PHI at the top level, in nested sequences and in private tags', () => {
    const { first } = series();
    for (const phi of PHI) expect(first.includes(phi), `test run holds ${phi}`).toBe(true);
    const out = deidentify(first, profile(), key);
    for (const phi of PHI) expect(out.bytes.includes(phi), `${phi} left the site`).toBe(false);
    for (const uid of [STUDY, SERIES, `${SERIES}.1`]) expect(out.bytes.includes(uid), `${uid} left the site`).toBe(false);

    const { ds, meta } = readDataset(out.bytes);
    expect(value(ds, '00100010')).toBeUndefined(); // emptied (type 2)
    expect(ds['00100010']).toBeDefined();
    expect(ds['00080080']).toBeUndefined(); // institution removed
    expect(ds['00400275']).toBeUndefined(); // request attributes removed with their content
    const source = items(ds, '00082112')[0];
    expect(items(source, '0040A730')[0]?.['0040A123']).toBeUndefined(); // a person two sequences deep
    expect(value(source, '00081150')).toBe('1.2.840.10008.5.1.4.1.1.12.1'); // a SOP class is no identity
    // Private: the unlisted block is gone, the allow-listed element and its creator stay, its neighbour does not.
    expect(ds['00090010']).toBeUndefined();
    expect(ds['00091001']).toBeUndefined();
    expect(value(ds, '00190010')).toBe('ARTERIA SAFE');
    expect(value(ds, '00191005')).toBe('kV curve 3');
    expect(ds['00191006']).toBeUndefined();
    // Marked, with the method named by code.
    expect(value(ds, '00120062')).toBe('YES');
    expect(items(ds, '00120064').map((i) => value(i, '00080100'))).toEqual(['113100']);
    expect(value(ds, '00280303')).toBe('REMOVED') // dates removed: the default keeps no longitudinal information;
    expect(value(meta, '00020003')).toBe(value(ds, '00080018'));
    // What re-identifies the result stays with the caller.
    expect(out.original).toMatchObject({ patientName: 'Doe^Jane', patientId: 'MRN-0042', accessionNumber: 'ACC-7781', studyInstanceUid: STUDY, sopInstanceUid: `${SERIES}.1` });
  });

  it('replaces UIDs consistently across a series, references included, and only with the site key', () => {
    const { first, second } = series();
    const a = deidentify(first, profile(), key);
    const b = deidentify(second, profile(), key);
    expect(a.deidentified.studyInstanceUid).toBe(b.deidentified.studyInstanceUid);
    expect(a.deidentified.seriesInstanceUid).toBe(b.deidentified.seriesInstanceUid);
    expect(a.deidentified.sopInstanceUid).not.toBe(b.deidentified.sopInstanceUid);
    expect(a.deidentified.studyInstanceUid).toMatch(/^2\.25\.\d{1,39}$/);
    // The second run's reference to the first points at the first run's new UID.
    expect(value(items(readDataset(b.bytes).ds, '00082112')[0], '00081155')).toBe(a.deidentified.sopInstanceUid);
    expect(value(readDataset(a.bytes).ds, '00200052')).toBe(value(readDataset(b.bytes).ds, '00200052'));
    // Deterministic (a resend is the same object), and another site's key gives other UIDs.
    expect(deidentify(first, profile(), key).bytes.equals(a.bytes)).toBe(true);
    const other = deidentify(first, profile(), new DeidentificationKey(Buffer.alloc(32, 8)));
    expect(other.deidentified.studyInstanceUid).not.toBe(a.deidentified.studyInstanceUid);
  });

  it('shifts dates by one offset per patient with the longitudinal option, and removes them by default', () => {
    const { first, second } = series();
    const longitudinal = profile({ retainLongitudinalTemporalInformationModifiedDates: true });
    const a = readDataset(deidentify(first, longitudinal, key).bytes).ds;
    const b = readDataset(deidentify(second, longitudinal, key).bytes).ds;
    const studyDate = String(value(a, '00080020'));
    expect(studyDate).toMatch(/^\d{8}$/);
    expect(studyDate).not.toBe('20240315');
    expect(value(b, '00080020')).toBe(studyDate);
    expect(value(a, '00100030')).toBeUndefined(); // birth date emptied in every case

    const removed = readDataset(deidentify(first, profile(), key).bytes).ds;
    expect(value(removed, '00080020')).toBeUndefined();
    expect(removed['00080021']).toBeUndefined();
    expect(value(removed, '00280303')).toBe('REMOVED');
  });

  it('keeps device identity and patient characteristics only when the site chose to', () => {
    const { first } = series();
    // The default: the basic profile, no retain option.
    const basic = readDataset(deidentify(first, profile(), key).bytes).ds;
    expect(basic['00081010']).toBeUndefined();
    expect(basic['00181000']).toBeUndefined();
    expect(value(basic, '00100040')).toBeUndefined();
    expect(basic['00101010']).toBeUndefined();
    const retained = readDataset(deidentify(first, profile({ retainDeviceIdentity: true, retainPatientCharacteristics: true }), key).bytes).ds;
    expect(value(retained, '00081010')).toBe('CATHLAB2');
    expect(value(retained, '00181000')).toBe('SN-99812');
    expect(value(retained, '00100040')).toBe('F');
    expect(value(retained, '00101010')).toBe('073Y');
    expect(items(retained, '00120064').map((i) => value(i, '00080100'))).toContain('113108');
  });

  it('takes a screen or video capture that may show the patient\'s name as having burned-in annotation unless it says NO', async () => {
    const capture = (burnedInAnnotation: 'YES' | 'NO' | 'absent'): Buffer => writeColorRun({ rows: 8, columns: 8, frames: 2, rgb: () => [200, 100, 50], burnedInAnnotation });
    expect(deidentify(capture('NO'), profile(), key).masked).toBe(false);
    for (const unsaid of [capture('absent'), capture('YES')]) {
      expect(() => deidentify(unsaid, profile(), key)).toThrow(expect.objectContaining({ code: 'DEIDENTIFICATION_REFUSED' }) as ArteriaError);
    }
    const dir = await mkdtemp(join(tmpdir(), 'arteria-capture-'));
    try {
      const file = join(dir, 'capture.dcm');
      await writeFile(file, capture('absent'));
      await expect(deidentifyFile(file, join(dir, 'out.dcm'), profile(), key)).rejects.toMatchObject({ code: 'DEIDENTIFICATION_REFUSED', message: expect.stringContaining('secondary capture') as string });
      // Masked where the site says its captures show the name: all three samples of each pixel there.
      const masked = deidentify(capture('absent'), profile({ burnedInAnnotation: { policy: 'mask', regions: [{ x: 0, y: 0, width: 8, height: 2 }] } }), key);
      const pixels = new Uint8Array(readDataset(masked.bytes).ds['7FE00010']?.Value?.[0] as ArrayBuffer);
      for (const frame of [0, 1]) {
        expect(pixels.subarray(frame * 192, frame * 192 + 48).every((v) => v === 0)).toBe(true);
        expect(Array.from(pixels.subarray(frame * 192 + 48, frame * 192 + 51))).toEqual([200, 100, 50]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a run with burned-in annotation, or masks the configured regions', () => {
    const run = phiRun({ seed: 3, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.3`, burnedIn: true });
    expect(() => deidentify(run, profile(), key)).toThrow(expect.objectContaining({ code: 'DEIDENTIFICATION_REFUSED' }) as ArteriaError);

    const out = deidentify(run, profile({ burnedInAnnotation: { policy: 'mask', regions: [{ x: 0, y: 0, width: 16, height: 4 }] } }), key);
    expect(out.masked).toBe(true);
    const before = new Uint8Array(readDataset(run).ds['7FE00010']?.Value?.[0] as ArrayBuffer);
    const { ds } = readDataset(out.bytes);
    const after = new Uint8Array(ds['7FE00010']?.Value?.[0] as ArrayBuffer);
    expect(value(ds, '00280301')).toBe('NO');
    expect(items(ds, '00120064').map((i) => value(i, '00080100'))).toContain('113101');
    for (let frame = 0; frame < 4; frame += 1) {
      const base = frame * 256;
      expect(after.subarray(base, base + 64).every((p) => p === 0)).toBe(true); // top 4 rows masked
      expect(after.subarray(base + 64, base + 256)).toEqual(before.subarray(base + 64, base + 256)); // the rest untouched
    }
    expect(before.subarray(0, 64).some((p) => p !== 0)).toBe(true);
  });

  it('de-identifies Implicit VR Little Endian input the same way (private creators as raw bytes)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arteria-implicit-'));
    try {
      await writeFile(join(dir, 'explicit.dcm'), series().first);
      await exec('dcmconv', ['+ti', join(dir, 'explicit.dcm'), join(dir, 'implicit.dcm')]);
      const implicit = await readFile(join(dir, 'implicit.dcm'));
      const out = deidentify(implicit, profile(), key);
      for (const phi of PHI) expect(out.bytes.includes(phi), `${phi} left the site`).toBe(false);
      const { ds } = readDataset(out.bytes);
      expect(Object.keys(ds).filter((t) => t.startsWith('0019'))).toEqual(['00190010', '00191005']);
      expect(out.deidentified).toEqual(deidentify(series().first, profile(), key).deidentified);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('creates the site key once (mode 600) and keeps using it, so pseudonyms survive restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arteria-key-'));
    try {
      const path = join(dir, 'deid-key');
      const first = await DeidentificationKey.loadOrCreate(path);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const again = await DeidentificationKey.loadOrCreate(path);
      expect(again.uid(STUDY)).toBe(first.uid(STUDY));
      expect(again.dateShiftDays('MRN-0042')).toBe(first.dateShiftDays('MRN-0042'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('de-identifies a file without reading its pixels into memory, to the same object as in memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arteria-stream-'));
    try {
      const explicit = join(dir, 'explicit.dcm');
      await writeFile(explicit, series().first);
      await exec('dcmconv', ['+ti', explicit, join(dir, 'implicit.dcm')]);
      for (const name of ['explicit.dcm', 'implicit.dcm']) {
        const source = join(dir, name);
        const original = await readFile(source);
        const streamed = await deidentifyFile(source, join(dir, `out-${name}`), profile(), key);
        const bytes = await readFile(join(dir, `out-${name}`));
        const inMemory = deidentify(original, profile(), key);
        expect(streamed.deidentified).toEqual(inMemory.deidentified);
        for (const phi of PHI) expect(bytes.includes(phi), `${phi} left the site`).toBe(false);
        const strip = (bytesIn: Uint8Array): string => JSON.stringify(readDataset(bytesIn).ds, (k, v: unknown) => (k === '_rawValue' ? undefined : v instanceof ArrayBuffer ? Buffer.from(v).toString('base64') : v));
        expect(strip(bytes)).toBe(strip(inMemory.bytes));
        // The pixel bytes are the original's, copied.
        expect(bytes.subarray(bytes.length - 1024).equals(original.subarray(original.length - 1024))).toBe(true);
      }
      // Burned-in annotation: refused from the header alone (nothing written), or masked through memory.
      const burned = join(dir, 'burned.dcm');
      await writeFile(burned, phiRun({ seed: 3, studyInstanceUid: STUDY, seriesInstanceUid: SERIES, sopInstanceUid: `${SERIES}.3`, burnedIn: true }));
      await expect(deidentifyFile(burned, join(dir, 'refused.dcm'), profile(), key)).rejects.toMatchObject({ code: 'DEIDENTIFICATION_REFUSED' });
      await expect(stat(join(dir, 'refused.dcm'))).rejects.toMatchObject({ code: 'ENOENT' });
      const masked = await deidentifyFile(burned, join(dir, 'masked.dcm'), profile({ burnedInAnnotation: { policy: 'mask', regions: [{ x: 0, y: 0, width: 4, height: 4 }] } }), key);
      expect(masked.masked).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes unlisted public text unless it is technical text or the site keeps it', () => {
    const { first } = series();
    const { ds } = readDataset(deidentify(first, profile(), key).bytes);
    expect(ds['00187062']).toBeUndefined(); // unlisted free text
    expect(items(items(ds, '00082112')[0], '0040A730')[0]?.['0040A160']).toBeUndefined(); // Text Value, two sequences deep
    expect(value(ds, '00080070')).toBe('Arteria Synthetic'); // Manufacturer
    expect(value(ds, '00281055')).toBe('NORMAL');
    expect(items(ds, '00082218').map((i) => [value(i, '00080100'), value(i, '00080102'), value(i, '00080104')])).toEqual([['T-45010', 'SRT', 'Coronary artery']]);
    expect(ds['00180010']).toBeDefined(); // Contrast/Bolus Agent: emptied (Z in Table E.1-1)
    expect(value(ds, '00180010') ?? '').toBe('');

    const kept = readDataset(deidentify(first, profile({ keepText: ['00187062'] }), key).bytes).ds;
    expect(value(kept, '00187062')).toBe('exposure note for XXXX'); // kept, and the patient's name masked in it
    expect(items(items(kept, '00082112')[0], '0040A730')[0]?.['0040A160']).toBeUndefined();

    const all = readDataset(deidentify(first, profile({ unlistedText: 'keep', scrubKnownIdentifiers: false }), key).bytes).ds;
    expect(value(all, '00187062')).toBe('exposure note for Jane');
    expect(value(items(items(all, '00082112')[0], '0040A730')[0], '0040A160')).toBe('seen by the nurse');

    expect(() => profile({ keepText: ['00191005'] })).toThrow(/public/);
    expect(() => profile({ keepText: ['0018706'] })).toThrow(/8 hex/);
  });

  it('rejects a mask policy without regions', () => {
    expect(() => profile({ burnedInAnnotation: { policy: 'mask', regions: [] } })).toThrow(/region/);
  });
});
