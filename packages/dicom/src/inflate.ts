import { constants, inflateRawSync } from 'node:zlib';
import { ArteriaError } from '@arteria/protocol';

export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';

/**
 * Most bytes a deflated data set may inflate to (16 MiB). Arteria decodes no deflated run:
 * it inflates one only to read its header and refuse it with a reason, so a bound this small
 * costs nothing and a 600 KB file that inflates to gigabytes costs 16 MiB, not gigabytes.
 */
export const DEFAULT_MAX_INFLATED_BYTES = 16 * 1024 * 1024;

/**
 * Inflates a raw deflate stream, stopping as soon as the output passes `maxBytes`
 * (zlib's maxOutputLength: memory stays within the bound plus one chunk) with
 * INPUT_TOO_LARGE. A stream cut short (a file's first chunk) gives what it holds.
 */
export function inflateBounded(deflated: Uint8Array, maxBytes: number): Buffer {
  try {
    return inflateRawSync(deflated, { maxOutputLength: maxBytes, finishFlush: constants.Z_SYNC_FLUSH });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ArteriaError('INPUT_TOO_LARGE', `the deflated data set inflates to more than ${maxBytes} bytes, the most Arteria inflates (deflated runs are not decoded; send Explicit VR Little Endian)`, { cause: err });
    }
    throw new ArteriaError('INVALID_DICOM', `the deflated data set cannot be inflated: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * dicom-parser's `inflater` option: without it, dicom-parser inflates a deflated body
 * whole (zlib without a bound). Returns the meta header followed by the inflated body.
 */
export function boundedInflater(maxBytes: number): (bytes: Uint8Array, position: number) => Uint8Array {
  return (bytes, position) => {
    const body = inflateBounded(bytes.subarray(position), maxBytes);
    const whole = new Uint8Array(position + body.length);
    whole.set(bytes.subarray(0, position));
    whole.set(body, position);
    return whole;
  };
}

