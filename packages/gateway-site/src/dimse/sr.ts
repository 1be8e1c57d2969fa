import { createHash } from 'node:crypto';
import type { OriginalIdentity } from '@arteria/deid';
import { encodePart10 } from '@arteria/dicom';
import type { GatewayResult } from '@arteria/gateway';
import { GATEWAY_IMPLEMENTATION } from './instance-file.js';

export const BASIC_TEXT_SR = '1.2.840.10008.5.1.4.1.1.88.11';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** UID root for objects the gateway creates (UUID-derived, PS3.5 B.2). */
const UUID_ROOT = '2.25';

const code = (value: string, scheme: string, meaning: string): Record<string, string>[] => [{ CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning }];

/** A UID derived from a name: the same result always gets the same report UIDs, so a resend replaces, never duplicates. */
function derivedUid(name: string): string {
  return `${UUID_ROOT}.${BigInt(`0x${createHash('sha256').update(name).digest('hex').slice(0, 32)}`).toString(10)}`;
}

function dicomDateTime(epochMs: number): { date: string; time: string } {
  const iso = new Date(epochMs).toISOString();
  return { date: iso.slice(0, 10).replaceAll('-', ''), time: iso.slice(11, 19).replaceAll(':', '') };
}

/** One line per finding; the whole output as JSON for systems that read it. */
function describe(result: GatewayResult): { summary: string; detail: string } {
  const algorithm = result.algorithm ? `${result.algorithm.name} ${result.algorithm.version}` : 'unknown algorithm';
  if (result.status !== 'ok') return { summary: `${algorithm}: ${result.status} (${result.error?.code ?? 'no code'}: ${result.error?.message ?? ''})`, detail: '' };
  const output = result.output as { contrastDetected?: unknown; injection?: { startFrame?: unknown; peakFrame?: unknown; endFrame?: unknown } | null } | undefined;
  let summary = `${algorithm}: result available`;
  if (typeof output?.contrastDetected === 'boolean') {
    const inj = output.injection;
    summary = output.contrastDetected
      ? `${algorithm}: contrast injection detected${inj ? ` (frames ${String(inj.startFrame)}-${String(inj.endFrame)}, peak ${String(inj.peakFrame)})` : ''}`
      : `${algorithm}: no contrast injection detected`;
  }
  return { summary, detail: JSON.stringify(result.output ?? null).slice(0, 60_000) };
}

/**
 * A Basic Text SR describing an algorithm's result, in the original (re-identified) study
 * and referencing the original instance (for a run made of single frames, all of them as
 * evidence), for the hospital's PACS or viewer. The patient
 * and study attributes are copied from the original so the report files with the run.
 */
export function buildResultReport(result: GatewayResult, original: OriginalIdentity, options: { manufacturer?: string; stationName?: string } = {}): Buffer {
  const sopInstanceUid = derivedUid(`sr:${result.requestId}`);
  const seriesInstanceUid = derivedUid(`sr-series:${original.studyInstanceUid}`);
  const now = dicomDateTime(result.timings.received);
  const { summary, detail } = describe(result);
  const reference = { ReferencedSOPClassUID: original.sopClassUid, ReferencedSOPInstanceUID: original.sopInstanceUid };
  const evidence = original.instances?.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })) ?? [reference];
  const content: Record<string, unknown>[] = [
    { RelationshipType: 'CONTAINS', ValueType: 'TEXT', ConceptNameCodeSequence: code('121071', 'DCM', 'Finding'), TextValue: summary },
    { RelationshipType: 'CONTAINS', ValueType: 'IMAGE', ConceptNameCodeSequence: code('121112', 'DCM', 'Source of Measurement'), ReferencedSOPSequence: [reference] },
  ];
  if (result.algorithm) {
    content.push(
      { RelationshipType: 'CONTAINS', ValueType: 'TEXT', ConceptNameCodeSequence: code('111001', 'DCM', 'Algorithm Name'), TextValue: result.algorithm.name },
      { RelationshipType: 'CONTAINS', ValueType: 'TEXT', ConceptNameCodeSequence: code('111003', 'DCM', 'Algorithm Version'), TextValue: `${result.algorithm.version} ${result.algorithm.digest}` },
    );
  }
  if (detail !== '') content.push({ RelationshipType: 'CONTAINS', ValueType: 'TEXT', ConceptNameCodeSequence: code('121106', 'DCM', 'Comment'), TextValue: detail });

  const dataset = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: BASIC_TEXT_SR,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: original.studyDate,
    StudyTime: original.studyTime,
    ContentDate: now.date,
    ContentTime: now.time,
    AccessionNumber: original.accessionNumber,
    Modality: 'SR',
    Manufacturer: options.manufacturer ?? 'Arteria',
    ReferringPhysicianName: '',
    StationName: options.stationName ?? '',
    ReferencedPerformedProcedureStepSequence: [],
    PatientName: original.patientName,
    PatientID: original.patientId,
    PatientBirthDate: original.patientBirthDate,
    PatientSex: original.patientSex,
    StudyInstanceUID: original.studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    StudyID: original.studyId,
    SeriesNumber: 9901,
    InstanceNumber: 1,
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: code('18748-4', 'LN', 'Diagnostic Imaging Report'),
    ContinuityOfContent: 'SEPARATE',
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: original.studyInstanceUid,
        // A run made of single frames: every one of them is evidence; the finding's image item names the first.
        ReferencedSeriesSequence: [{ SeriesInstanceUID: original.seriesInstanceUid, ReferencedSOPSequence: evidence }],
      },
    ],
    ContentSequence: content,
  };
  const meta = { sopClassUid: BASIC_TEXT_SR, sopInstanceUid, transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN, implementationClassUid: GATEWAY_IMPLEMENTATION.classUid, implementationVersionName: GATEWAY_IMPLEMENTATION.versionName };
  return encodePart10(meta, dataset);
}
