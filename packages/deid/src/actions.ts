/**
 * PS3.15 Annex E, Table E.1-1 (the attributes an X-ray run and its derived objects
 * carry), as actions: X remove, Z empty, U replace UID, S shift date (retained
 * longitudinal temporal option), K keep. `dev` and `pat` name the action under the
 * Retain Device Identity and Retain Patient Characteristics options; dates use S under
 * the longitudinal option and the basic action otherwise.
 */
export type Action = 'X' | 'Z' | 'U' | 'K';
export interface Rule {
  basic: Action;
  dev?: Action;
  pat?: Action;
  /** A date/time attribute: shifted (DA, DT) or kept (TM) under the longitudinal option. */
  temporal?: true;
}

const X: Rule = { basic: 'X' };
const Z: Rule = { basic: 'Z' };
const U: Rule = { basic: 'U' };
const dev: Rule = { basic: 'X', dev: 'K' };
const pat = (basic: Action): Rule => ({ basic, pat: 'K' });
const date = (basic: Action): Rule => ({ basic, temporal: true });

export const RULES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  // Patient
  ['00100010', Z], // Patient's Name
  ['00100020', Z], // Patient ID
  ['00100021', X], // Issuer of Patient ID
  ['00100030', Z], // Patient's Birth Date
  ['00100032', X], // Patient's Birth Time
  ['00100040', pat('Z')], // Patient's Sex
  ['00100050', X], // Patient's Insurance Plan Code Sequence
  ['00100101', X], // Patient's Primary Language Code Sequence
  ['00101000', X], // Other Patient IDs
  ['00101001', X], // Other Patient Names
  ['00101002', X], // Other Patient IDs Sequence
  ['00101005', X], // Patient's Birth Name
  ['00101010', pat('X')], // Patient's Age
  ['00101020', pat('X')], // Patient's Size
  ['00101030', pat('X')], // Patient's Weight
  ['00101040', X], // Patient's Address
  ['00101050', X], // Insurance Plan Identification
  ['00101060', X], // Patient's Mother's Birth Name
  ['00101080', X], // Military Rank
  ['00101081', X], // Branch of Service
  ['00101090', X], // Medical Record Locator
  ['00102000', X], // Medical Alerts
  ['00102110', X], // Allergies
  ['00102150', X], // Country of Residence
  ['00102152', X], // Region of Residence
  ['00102154', X], // Patient's Telephone Numbers
  ['00102160', pat('X')], // Ethnic Group
  ['00102180', X], // Occupation
  ['001021A0', pat('X')], // Smoking Status
  ['001021B0', X], // Additional Patient History
  ['001021C0', pat('X')], // Pregnancy Status
  ['001021D0', date('X')], // Last Menstrual Date
  ['001021F0', X], // Patient's Religious Preference
  ['00102297', X], // Responsible Person
  ['00102299', X], // Responsible Organization
  ['00104000', X], // Patient Comments
  ['00100013', X], // Name to Use Comment
  ['00100016', X], // Pronoun Comment
  ['00380010', X], // Admission ID
  ['00380060', X], // Service Episode ID
  ['00380300', X], // Current Patient Location
  ['00380400', X], // Patient's Institution Residence
  ['00380500', pat('X')], // Patient State
  // Study, series, instance
  ['00080012', date('X')], // Instance Creation Date
  ['00080013', date('X')], // Instance Creation Time
  ['00080014', U], // Instance Creator UID
  ['00080018', U], // SOP Instance UID
  ['00080020', date('Z')], // Study Date
  ['00080021', date('X')], // Series Date
  ['00080022', date('X')], // Acquisition Date
  ['00080023', date('Z')], // Content Date
  ['0008002A', date('X')], // Acquisition DateTime
  ['00080030', date('Z')], // Study Time
  ['00080031', date('X')], // Series Time
  ['00080032', date('X')], // Acquisition Time
  ['00080033', date('Z')], // Content Time
  ['00080050', Z], // Accession Number
  ['00080080', X], // Institution Name
  ['00080081', X], // Institution Address
  ['00080082', X], // Institution Code Sequence
  ['00080090', Z], // Referring Physician's Name
  ['00080092', X], // Referring Physician's Address
  ['00080094', X], // Referring Physician's Telephone Numbers
  ['00080096', X], // Referring Physician Identification Sequence
  ['00081010', dev], // Station Name
  ['00081030', X], // Study Description
  ['0008103E', X], // Series Description
  ['00081040', X], // Institutional Department Name
  ['00081048', X], // Physician(s) of Record
  ['00081049', X], // Physician(s) of Record Identification Sequence
  ['00081050', X], // Performing Physician's Name
  ['00081052', X], // Performing Physician Identification Sequence
  ['00081060', X], // Name of Physician(s) Reading Study
  ['00081062', X], // Physician(s) Reading Study Identification Sequence
  ['00081070', X], // Operators' Name
  ['00081072', X], // Operator Identification Sequence
  ['00081080', X], // Admitting Diagnoses Description
  ['00081084', X], // Admitting Diagnoses Code Sequence
  ['00081120', X], // Referenced Patient Sequence
  ['00082111', X], // Derivation Description
  ['00084000', X], // Identifying Comments
  // Equipment and acquisition
  ['00180010', Z], // Contrast/Bolus Agent (Z/D: emptied)
  ['00181000', dev], // Device Serial Number
  ['00181002', { basic: 'U', dev: 'K' }], // Device UID
  ['00181004', dev], // Plate ID
  ['00181005', dev], // Generator ID
  ['00181007', dev], // Cassette ID
  ['00181008', dev], // Gantry ID
  ['00181030', X], // Protocol Name
  ['00181200', { basic: 'X', dev: 'K', temporal: true }], // Date of Last Calibration
  ['00181201', { basic: 'X', dev: 'K', temporal: true }], // Time of Last Calibration
  ['00181400', X], // Acquisition Device Processing Description
  ['00184000', X], // Acquisition Comments
  ['00189424', X], // Acquisition Protocol Description
  ['00189937', X], // Requested Series Description
  ['0018700A', dev], // Detector ID
  ['0020000D', U], // Study Instance UID
  ['0020000E', U], // Series Instance UID
  ['00200010', Z], // Study ID
  ['00200052', U], // Frame of Reference UID
  ['00200200', U], // Synchronization Frame of Reference UID
  ['00204000', X], // Image Comments
  ['00203406', X], // Modified Image Description
  ['00209158', X], // Frame Comments
  ['00284000', X], // Image Presentation Comments
  // Request and procedure
  ['00321032', X], // Requesting Physician
  ['00321033', X], // Requesting Service
  ['00321030', X], // Reason for Study
  ['00321066', X], // Reason for Visit
  ['00321060', X], // Requested Procedure Description
  ['00324000', X], // Study Comments
  ['00380040', X], // Discharge Diagnosis Description
  ['00380050', X], // Special Needs
  ['00384000', X], // Visit Comments
  ['00400007', X], // Scheduled Procedure Step Description
  ['00400012', X], // Pre-Medication
  ['00400244', date('X')], // Performed Procedure Step Start Date
  ['00400245', date('X')], // Performed Procedure Step Start Time
  ['00400253', X], // Performed Procedure Step ID
  ['00400254', X], // Performed Procedure Step Description
  ['00400275', X], // Request Attributes Sequence
  ['00400280', X], // Comments on the Performed Procedure Step
  ['00400310', X], // Comments on Radiation Dose
  ['00400556', X], // Acquisition Context Description
  ['00401001', X], // Requested Procedure ID
  ['00401002', X], // Reason for the Requested Procedure
  ['00401101', X], // Person Identification Code Sequence
  ['00401400', X], // Requested Procedure Comments
  ['00402001', X], // Reason for the Imaging Service Request
  ['00402016', X], // Placer Order Number / Imaging Service Request
  ['00402017', X], // Filler Order Number / Imaging Service Request
  ['00402400', X], // Imaging Service Request Comments
  ['00403001', X], // Confidentiality Constraint on Patient Data Description
  ['00700006', Z], // Unformatted Text Value (D: emptied, no dummy text)
  ['20300020', X], // Text String
  ['00880140', U], // Storage Media File-set UID
  // File meta
  ['00020003', U], // Media Storage SOP Instance UID
  ['00020016', X], // Source Application Entity Title
]);

/**
 * Public text attributes (LO, SH, ST, LT, UT, UC) the table does not name that are kept
 * under `unlistedText: "remove"`: technical text that identifies no one and that algorithms
 * and viewers use. Every other unlisted text attribute is removed, so free text the table
 * does not list (a comment a vendor stores in an unusual attribute) cannot leave the site.
 */
export const KEPT_TEXT: ReadonlySet<string> = new Set([
  '00080070', // Manufacturer
  '00081090', // Manufacturer's Model Name
  '00181020', // Software Versions
  '0018702A', // Detector Manufacturer Name
  '0018702B', // Detector Manufacturer's Model Name
  '00181160', // Filter Type
  '00181180', // Collimator/grid Name
  '00281055', // Window Center & Width Explanation
  '00080100', // Code Value
  '00080102', // Coding Scheme Designator
  '00080103', // Coding Scheme Version
  '00080104', // Code Meaning
  '00080119', // Long Code Value
]);

/** Registered DICOM UIDs (SOP classes, transfer syntaxes, coding schemes) identify no one and are kept. */
export const STANDARD_UID_ROOT = '1.2.840.10008.';

/** Overlay data and comments in the repeating groups 60xx, curves in 50xx. */
export function repeatingGroupAction(tag: string): Action | undefined {
  const group = tag.slice(0, 2);
  if (group === '50') return 'X';
  if (group === '60' && (tag.endsWith('3000') || tag.endsWith('4000'))) return 'X';
  return undefined;
}
