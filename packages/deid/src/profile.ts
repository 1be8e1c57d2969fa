import { z } from 'zod';

const hex4 = z.string().regex(/^[0-9A-Fa-f]{4}$/, 'must be 4 hex digits');
const hex2 = z.string().regex(/^[0-9A-Fa-f]{2}$/, 'must be 2 hex digits');

/** A private element kept through de-identification: its group, its creator, and its element byte (gggg,xxEE). */
export const PrivateTagAllowance = z.strictObject({
  group: hex4.refine((g) => parseInt(g, 16) % 2 === 1, 'must be an odd (private) group'),
  creator: z.string().min(1).max(64),
  element: hex2,
});
export type PrivateTagAllowance = z.infer<typeof PrivateTagAllowance>;

/** A rectangle of every frame (pixels) overwritten when burned-in annotation is masked. */
export const MaskRegion = z.strictObject({
  x: z.number().int().nonnegative(),
  y: z.number().int().nonnegative(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});
export type MaskRegion = z.infer<typeof MaskRegion>;

/**
 * A site's de-identification choices: DICOM PS3.15 Annex E Basic Application Level
 * Confidentiality Profile plus the options the site selects. Every retain option is off by
 * default: the basic profile alone, and a site opts in to keeping more.
 */
export const DeidentificationProfile = z.strictObject({
  /** Dates are shifted by a per-patient offset (keyed, stable) instead of removed; times are kept. */
  retainLongitudinalTemporalInformationModifiedDates: z.boolean().default(false),
  /** Keeps station name, device serial number, detector and calibration identity (a station name can name a hospital). */
  retainDeviceIdentity: z.boolean().default(false),
  /** Keeps sex, age, size, weight, ethnic group, smoking and pregnancy status. */
  retainPatientCharacteristics: z.boolean().default(false),
  /**
   * Public text attributes (LO, SH, ST, LT, UT, UC, and UN outside the dictionary) that the
   * action table does not name: `remove` (default) removes them unless they are technical
   * text on the built-in keep list or in `keepText`; `keep` keeps them (then only the known
   * identifier scrub looks at them).
   */
  unlistedText: z.enum(['remove', 'keep']).default('remove'),
  /** Further public text attributes kept under `unlistedText: "remove"`, as 8 hex digits (e.g. "00187062", Exposure Control Mode Description). */
  keepText: z.array(z.string().regex(/^[0-9A-Fa-f]{8}$/, 'must be a tag as 8 hex digits').refine((t) => parseInt(t.slice(0, 4), 16) % 2 === 0, 'must be a public (even group) tag')).max(256).default([]),
  /** Private elements kept; every other private element is removed. */
  privateTagAllowList: z.array(PrivateTagAllowance).max(256).default([]),
  /**
   * Masks the patient's own name, IDs, accession number and birth date (as the original header
   * gives them) wherever they appear in text that de-identification keeps.
   */
  scrubKnownIdentifiers: z.boolean().default(true),
  /**
   * What happens to a run whose Burned In Annotation is YES: `refuse` it, or `mask` the
   * configured regions of every frame (then Burned In Annotation becomes NO).
   */
  burnedInAnnotation: z
    .strictObject({ policy: z.enum(['refuse', 'mask']), regions: z.array(MaskRegion).max(32).default([]) })
    .refine((b) => b.policy === 'refuse' || b.regions.length > 0, 'mask needs at least one region')
    .default({ policy: 'refuse', regions: [] }),
});
export type DeidentificationProfileInput = z.input<typeof DeidentificationProfile>;
export type DeidentificationProfile = z.output<typeof DeidentificationProfile>;
