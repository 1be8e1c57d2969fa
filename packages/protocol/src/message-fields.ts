/** Field schemas the device messages share (requests, results, questions and their answers, segmented runs). */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from './errors.js';
import { ID_PATTERN } from './ids.js';

/** A tenant or device id. */
export const idSchema = z.string().regex(ID_PATTERN, 'must match [a-z0-9][a-z0-9_-]{0,63}');

export const errorCodeSchema = z.string().refine((c): c is ErrorCode => Object.hasOwn(ERROR_CODES, c), 'must be a registered error code');

/** Why something was refused or failed, as the device reads it: a registered code and a message. */
export const ErrorDetailSchema = z.strictObject({ code: errorCodeSchema, message: z.string().max(2000) });

/** The id a device gives a question (a grant, an admission probe); the answer names it. */
export const questionIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -');

/**
 * What every answer to a device's question starts with: its kind and the device it is for
 * (the platform publishes it on that device's results topic only).
 */
export function answerTo<K extends string>(kind: K) {
  return { v: z.literal(1), kind: z.literal(kind), tenant: idSchema, device: idSchema };
}
