import { z } from 'zod';
import { ErrorDetailSchema, answerTo, questionIdSchema } from './message-fields.js';

const url = z.string().max(4096).regex(/^https?:\/\//, 'must be an http(s) URL');

/** Most part URLs one grant carries (keeps an answer far below the MQTT payload limit). */
export const MAX_GRANT_PARTS = 64;

/**
 * Object-store operations a grant can cover, each for exactly one key: `put` (a whole
 * object), `create` (CreateMultipartUpload), `head` (the object's size and ETag, never its
 * bytes), and for one upload id `list` (ListParts), `complete` and `abort`.
 */
export const GRANT_OPERATIONS = ['put', 'create', 'head', 'list', 'complete', 'abort'] as const;
export type GrantOperation = (typeof GRANT_OPERATIONS)[number];

/**
 * A device asks, on its own requests topic, for presigned URLs to write one object under
 * its own prefix (`{tenant}/{device}/...`). The answer (`GrantAnswerV1`) comes on its
 * results topic. The device never holds store credentials. `create` together with part
 * URLs (or `complete`, `list`, `abort`) and no `uploadId` starts the multipart upload on
 * the platform's side: the answer carries its `uploadId` and the URLs for it, so a whole
 * upload needs one round trip.
 */
export const GrantRequestV1 = z.strictObject({
  v: z.literal(1),
  kind: z.literal('grant'),
  id: questionIdSchema,
  key: z.string().min(1).max(512),
  /** The multipart upload the `list`, `complete`, `abort` and part URLs are for. */
  uploadId: z.string().min(1).max(1024).optional(),
  operations: z.array(z.enum(GRANT_OPERATIONS)).max(GRANT_OPERATIONS.length).default([]),
  /** UploadPart URLs for these part numbers (needs `uploadId`). */
  parts: z.array(z.number().int().min(1).max(10_000)).max(MAX_GRANT_PARTS).optional(),
  /** ListParts page after this part number (`list`). */
  partNumberMarker: z.number().int().min(0).max(10_000).optional(),
});
export type GrantRequestV1 = z.infer<typeof GrantRequestV1>;

export const GrantAnswerV1 = z.strictObject({
  ...answerTo('grant-answer'),
  grantId: questionIdSchema,
  key: z.string().max(512),
  /** Epoch ms after which the store refuses every URL of this grant. */
  expiresAt: z.number().nonnegative(),
  /** The multipart upload the platform started for a `create` that came with part URLs (absent otherwise). */
  uploadId: z.string().min(1).max(1024).optional(),
  urls: z.partialRecord(z.enum(GRANT_OPERATIONS), url).default({}),
  parts: z.array(z.strictObject({ partNumber: z.number().int().min(1).max(10_000), url })).max(MAX_GRANT_PARTS).default([]),
  /** The grant was refused (NOT_AUTHORIZED, OBJECT_EXISTS, GRANT_UNAVAILABLE, ...): no URLs. */
  error: ErrorDetailSchema.optional(),
});
export type GrantAnswerV1 = z.infer<typeof GrantAnswerV1>;
