import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs, { type DenaturalizedDataset } from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { DeidentificationKey, DeidentificationProfile, deidentify, deidentifyFile, type DeidentificationProfileInput } from '@arteria/gateway';
import { exec } from '@arteria/testing';

const key = new DeidentificationKey(Buffer.alloc(32, 11));
const profile = (input: DeidentificationProfileInput = {}): DeidentificationProfile =>
  DeidentificationProfile.parse({
    privateTagAllowList: [
      { group: '0019', creator: 'ARTERIA SAFE', element: '05' },
      { group: '0019', creator: 'ARTERIA SAFE', element: '06' },
    ],
    // Text Value is unlisted free text, removed by default; this site keeps it for an algorithm.
    keepText: ['0040A160'],
    ...input,
  });

const el = (vr: string, ...values: unknown[]): { vr: string; Value: unknown[] } => ({ vr, Value: values });

/** Kept free text as staff type it: the patient's name in several forms, IDs, accession number, birth date. */
const TYPED = {
  /** Manufacturer's Model Name: a public text attribute the action table keeps (not in Table E.1-1). */
  '(0008,1090)': 'Smith^Al MRN1234567 pre-PCI; Dr Aldrich (Smithfield)',
  /** Text Value two sequences deep (Source Image Sequence > Content Sequence), kept by the site's keepText. */
  '(0040,a160)': 'Al Smith, born 04.07.1951, acc ACC20240315; see MRN12345678',
  /** Allow-listed private elements. */
  '(0019,1005)': 'SMITH, AL dob 1951-07-04 alt-555 Alberta',
  '(0019,1006)': 'kV curve 3',
};
const MASKED: Record<keyof typeof TYPED, string> = {
  '(0008,1090)': 'XXXXX^XX XXXXXXXXXX pre-PCI; Dr Aldrich (Smithfield)',
  '(0040,a160)': 'XX XXXXX, born XX.XX.XXXX, acc XXXXXXXXXXX; see MRN12345678',
  '(0019,1005)': 'XXXXX, XX dob XXXX-XX-XX XXX-XXX Alberta',
  '(0019,1006)': 'kV curve 3',
};
const SCRUB_METHOD = 'Known Patient Identifiers Masked in Text';
/** The identifiers as whole tokens: none may be left anywhere in a de-identified header. */
const LEFT = [/(?<![a-z])smith(?![a-z])/i, /(?<![a-z])al(?![a-z])/i, /mrn1234567(?!\d)/i, /acc20240315/i, /alt-555/i, /19510704/, /04\.07\.1951/, /1951-07-04/];

/** Everything before the top-level Pixel Data (7FE0,0010), as Latin-1 text. */
function headerText(bytes: Buffer): string {
  const pixels = bytes.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  expect(pixels).toBeGreaterThan(0);
  return bytes.subarray(0, pixels).toString('latin1');
}

/** A small XA run whose header names the patient, and whose kept text repeats it. */
function typedRun(): Buffer {
  const bytes = synthesizeXaRun({ seed: 5, rows: 16, columns: 16, frames: 4, bitsStored: 8 }).bytes;
  const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  const ds: DenaturalizedDataset = dict.dict;
  Object.assign(ds, {
    '00100010': el('PN', { Alphabetic: 'Smith^Al' }),
    '00100020': el('LO', 'MRN1234567'),
    '00101000': el('LO', 'ALT-555'),
    '00100030': el('DA', '19510704'),
    '00080050': el('SH', 'ACC20240315'),
    '00081090': el('LO', TYPED['(0008,1090)']),
    '00082112': el('SQ', {
      '00081150': el('UI', '1.2.840.10008.5.1.4.1.1.12.1'),
      '00081155': el('UI', '1.2.826.0.1.3680043.8.1055.1.77'),
      '0040A730': el('SQ', { '0040A040': el('CS', 'TEXT'), '0040A160': el('UT', TYPED['(0040,a160)']) }),
    }),
    '00190010': el('LO', 'ARTERIA SAFE'),
    '00191005': el('LO', TYPED['(0019,1005)']),
    '00191006': el('LT', TYPED['(0019,1006)']),
  });
  return Buffer.from(dict.write());
}

/** The values of the typed elements and of De-identification Method, as DCMTK's dcmdump reads them (at any depth). */
async function dumped(file: string): Promise<Record<string, string>> {
  const tags = [...Object.keys(TYPED), '(0012,0063)'].map((t) => t.slice(1, -1));
  const { stdout } = await exec('dcmdump', ['-q', '+L', ...tags.flatMap((t) => ['+P', t]), file]);
  const values: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\([0-9a-f]{4},[0-9a-f]{4}\)) (\w\w|\?\?) (.*?)\s+#/.exec(line);
    if (!m?.[1] || !m[2] || m[3] === undefined) continue;
    // An Implicit VR private element unknown to DCMTK prints without a VR, in hex bytes.
    values[m[1]] = m[2] === '??' || m[2] === 'UN' ? Buffer.from(m[3].split('\\').map((h) => parseInt(h, 16))).toString('utf8').replace(/[\0 ]+$/, '') : m[3].replace(/^\[|\]$/g, '');
  }
  return values;
}

let dir: string;
let explicit: string;
let implicit: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arteria-scrub-'));
  explicit = join(dir, 'explicit.dcm');
  implicit = join(dir, 'implicit.dcm');
  await writeFile(explicit, typedRun());
  await exec('dcmconv', ['+ti', explicit, implicit]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('known identifier scrub', () => {
  it('holds the typed text before de-identification (as DCMTK reads it)', async () => {
    const values = await dumped(explicit);
    for (const [tag, text] of Object.entries(TYPED)) expect(values[tag]).toBe(text);
  });

  for (const layout of ['explicit', 'implicit'] as const) {
    it(`${layout} VR: masks the patient's identifiers in kept text at any depth, in memory and streamed, and keeps other words`, async () => {
      const source = layout === 'explicit' ? explicit : implicit;
      const inMemoryPath = join(dir, `${layout}.memory.dcm`);
      const streamedPath = join(dir, `${layout}.streamed.dcm`);
      const inMemory = deidentify(await readFile(source), profile(), key);
      await writeFile(inMemoryPath, inMemory.bytes);
      const streamed = await deidentifyFile(source, streamedPath, profile(), key);
      expect(streamed.deidentified).toEqual(inMemory.deidentified);

      for (const path of [inMemoryPath, streamedPath]) {
        const values = await dumped(path);
        for (const [tag, text] of Object.entries(MASKED)) expect(values[tag], `${tag} in ${path}`).toBe(text);
        expect(values['(0012,0063)']?.split('\\')).toContain(SCRUB_METHOD);
        const header = headerText(await readFile(path));
        for (const pattern of LEFT) expect(header, `${String(pattern)} left the site from ${path}`).not.toMatch(pattern);
      }
      // The original identity stays on-site, for re-identification.
      expect(inMemory.original).toMatchObject({ patientName: 'Smith^Al', patientId: 'MRN1234567', accessionNumber: 'ACC20240315', patientBirthDate: '19510704' });
    });
  }

  it('is deterministic: the same run gives the same bytes, in memory and streamed', async () => {
    const run = await readFile(explicit);
    expect(deidentify(run, profile(), key).bytes.equals(deidentify(run, profile(), key).bytes)).toBe(true);
    const [a, b] = [join(dir, 'again-a.dcm'), join(dir, 'again-b.dcm')];
    await deidentifyFile(explicit, a, profile(), key);
    await deidentifyFile(explicit, b, profile(), key);
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
  });

  it('keeps the typed text as it is when the site turns the scrub off', async () => {
    for (const source of [explicit, implicit]) {
      const off = join(dir, `off-${source === explicit ? 'explicit' : 'implicit'}.dcm`);
      await deidentifyFile(source, off, profile({ scrubKnownIdentifiers: false }), key);
      const values = await dumped(off);
      for (const [tag, text] of Object.entries(TYPED)) expect(values[tag]).toBe(text);
      expect(values['(0012,0063)']?.split('\\')).not.toContain(SCRUB_METHOD);
      // What the action table removes is removed whatever the option.
      expect(headerText(await readFile(off))).not.toMatch(/19510704/);
    }
  });
});
