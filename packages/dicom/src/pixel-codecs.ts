/**
 * Compressed-frame codecs: dcmjs-codecs, a WebAssembly build of DCMTK's JPEG and RLE
 * codecs and CharLS (JPEG-LS), maintained for DICOM. Loaded only when a run needs them.
 */
import dcmjsCodecs from 'dcmjs-codecs';
import { ArteriaError } from '@arteria/protocol';

export type CodecFamily = 'jpeg' | 'jpeg-ls' | 'rle';

/** Geometry of one grayscale frame, as the codec needs it. */
export interface FrameGeometry {
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
}

/** Decodes one encoded frame into little-endian samples (rows * columns * bitsAllocated / 8 bytes). */
export interface PixelCodecs {
  decodeFrame(family: CodecFamily, encoded: Uint8Array, frame: FrameGeometry): Uint8Array;
}

let loading: Promise<PixelCodecs> | undefined;

/**
 * Loads the codecs' WebAssembly once per thread (the module is a per-thread singleton
 * in dcmjs-codecs itself, so sharing the promise adds no state of Arteria's own).
 */
export function loadPixelCodecs(): Promise<PixelCodecs> {
  loading ??= (async () => {
    const { NativeCodecs, Context } = dcmjsCodecs;
    try {
      await NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
    } catch (err) {
      loading = undefined;
      throw new ArteriaError('INTERNAL', 'the DICOM pixel codecs (dcmjs-codecs) could not be loaded', { cause: err });
    }
    return {
      decodeFrame(family, encoded, frame) {
        const context = new Context({
          width: frame.columns,
          height: frame.rows,
          bitsAllocated: frame.bitsAllocated,
          bitsStored: frame.bitsStored,
          samplesPerPixel: 1,
          pixelRepresentation: 0,
          planarConfiguration: 0,
          photometricInterpretation: frame.photometric,
          encodedBuffer: encoded,
        });
        const decoded =
          family === 'rle' ? NativeCodecs.decodeRle(context) : family === 'jpeg-ls' ? NativeCodecs.decodeJpegLs(context) : NativeCodecs.decodeJpeg(context);
        const bytes = decoded.getDecodedBuffer();
        if (bytes === undefined) throw new Error('the codec returned no pixels');
        return bytes;
      },
    };
  })();
  return loading;
}
