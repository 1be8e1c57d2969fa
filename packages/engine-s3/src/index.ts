export * from './embedded/local-input-source.js';
export * from './embedded/object-store.js';
export * from './storage/bucket-check.js';
export * from './storage/s3.js';
export * from './storage/upload-grants.js';
export * from './storage/object-bucket.js';
