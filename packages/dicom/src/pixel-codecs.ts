/**
 * Compressed-frame codecs: dcmjs-codecs, a WebAssembly build of DCMTK's JPEG and RLE
 * codecs, CharLS (JPEG-LS), OpenJPEG (JPEG 2000) and OpenJPH (High-Throughput JPEG 2000),
 * maintained for DICOM. Loaded only when a run needs them: the module (and dcmjs, which it
 * loads) is imported on first use, so a thread that only reads native runs, as most
 * algorithm threads do, does not hold its code and dictionaries in its heap, which every
 * full garbage collection of that thread would mark again.
 */
import type * as DcmjsCodecs from 'dcmjs-codecs';
import { ArteriaError } from '@arteria/protocol';

export type CodecFamily = 'jpeg' | 'jpeg-ls' | 'rle' | 'jpeg2000' | 'htj2k';

/** Geometry of one frame, as the codec needs it. */
export interface FrameGeometry {
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  /** The data set's Photometric Interpretation (MONOCHROME1/2, or a color one with 3 samples). */
  photometric: string;
  samplesPerPixel: 1 | 3;
  planarConfiguration: number;
}

/** One decoded frame: little-endian samples (rows * columns * samplesPerPixel * bitsAllocated / 8 bytes). */
export interface DecodedFrame {
  bytes: Uint8Array;
  /** What the samples are after decoding: a codec may have turned YBR into RGB. */
  photometric: string;
  /** 1 when the codec wrote one plane per sample. */
  planarConfiguration: number;
}

export interface PixelCodecs {
  decodeFrame(family: CodecFamily, encoded: Uint8Array, frame: FrameGeometry): DecodedFrame;
}

let loading: Promise<PixelCodecs> | undefined;

/**
 * Loads the codecs' WebAssembly once per thread (the module is a per-thread singleton
 * in dcmjs-codecs itself, so sharing the promise adds no state of Arteria's own).
 */
export function loadPixelCodecs(): Promise<PixelCodecs> {
  loading ??= (async () => {
    let codecs: typeof DcmjsCodecs;
    try {
      // A CommonJS bundle: Node gives its exports as `default` only, though its types name them.
      codecs = ((await import('dcmjs-codecs')) as unknown as { default: typeof DcmjsCodecs }).default;
      await codecs.NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
    } catch (err) {
      loading = undefined;
      throw new ArteriaError('INTERNAL', 'the DICOM pixel codecs (dcmjs-codecs) could not be loaded', { cause: err });
    }
    const { NativeCodecs, Context } = codecs;
    return {
      decodeFrame(family, encoded, frame) {
        const context = new Context({
          width: frame.columns,
          height: frame.rows,
          bitsAllocated: frame.bitsAllocated,
          bitsStored: frame.bitsStored,
          samplesPerPixel: frame.samplesPerPixel,
          pixelRepresentation: 0,
          planarConfiguration: frame.planarConfiguration,
          photometricInterpretation: frame.photometric,
          encodedBuffer: encoded,
        });
        const decoders: Record<CodecFamily, (c: typeof context) => typeof context> = {
          rle: (c) => NativeCodecs.decodeRle(c),
          'jpeg-ls': (c) => NativeCodecs.decodeJpegLs(c),
          jpeg: (c) => NativeCodecs.decodeJpeg(c),
          jpeg2000: (c) => NativeCodecs.decodeJpeg2000(c),
          htj2k: (c) => NativeCodecs.decodeHtJpeg2000(c),
        };
        const decoded = decoders[family](context);
        const bytes = decoded.getDecodedBuffer();
        if (bytes === undefined) throw new ArteriaError('INVALID_DICOM', 'the codec returned no pixels');
        return { bytes, photometric: decoded.getPhotometricInterpretation() ?? frame.photometric, planarConfiguration: decoded.getPlanarConfiguration() ?? frame.planarConfiguration };
      },
    };
  })();
  return loading;
}
