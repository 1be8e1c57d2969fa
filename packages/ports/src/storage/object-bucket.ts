/**
 * The little the platform's own records need of an object store: keyed bytes under
 * prefixes (algorithm artifacts, release records, shadow runs). The S3 engine implements
 * it (`s3ObjectBucket`); a plane holds only this port, never an S3 client. Failures to
 * reach the store are STORAGE_UNAVAILABLE.
 */
export interface ObjectBucket {
  /** Where the objects live, for messages (e.g. `s3://arteria-runs`). */
  readonly location: string;
  /** The keys under `prefix` ending in `suffix`, sorted. */
  list(prefix: string, suffix: string): Promise<string[]>;
  exists(key: string): Promise<boolean>;
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  /** The object's bytes; undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  delete(key: string): Promise<void>;
}
