/** Largest MQTT payload Arteria sends or accepts: the AWS IoT Core message limit. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;

/** Protocol version carried in every payload's `v` field and in topic names. */
export const PROTOCOL_VERSION = 1;

/** At most this many input objects per request. */
export const MAX_INPUTS_PER_REQUEST = 16;
