export { MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, MAX_INPUTS_PER_REQUEST } from './limits.js';
export { ERROR_CODES, INPUT_ERROR_CODES, ArteriaError, closeFailed, toArteriaError, isErrorCode, type ErrorCode } from './errors.js';
export { ID_PATTERN, REQUEST_ID_PATTERN, UNREADABLE_REQUEST_ID, isValidId, requestId, type RequestIdParts } from './ids.js';
export {
  TOPIC_ROOT,
  TOPIC_KINDS,
  deviceTopic,
  parseDeviceTopic,
  allDevicesFilter,
  type TopicKind,
  type DeviceAddress,
  type ParsedTopic,
} from './topics.js';
export {
  ALGORITHM_NAME_PATTERN,
  AlgorithmSpec,
  splitAlgorithmSpec,
  InputRef,
  Timings,
  STAGES,
  RequestV1,
  AlgorithmRef,
  ResultV1,
  StatusV1,
  ConfigV1,
  SegmentEncoding,
  SegmentEncodingSetting,
  ReportedConfigV1,
  ProbeV1,
  ProbeAnswerV1,
  PlatformCapabilities,
  encodePayload,
  decodePayload,
  type Stage,
} from './schemas.js';
export { GRANT_OPERATIONS, MAX_GRANT_PARTS, GrantRequestV1, GrantAnswerV1, type GrantOperation } from './grants.js';
export { DEVICE_TOKEN_TTL_MS, deviceUsername, deviceToken, legacyDeviceToken, readDeviceToken, rotatedDeviceToken, verifyDeviceToken, deviceClientId, type DeviceTokenClaims, type DeviceTokenOptions } from './auth.js';
export { epochNow } from './clock.js';
export { canonicalJson, sha256Hex, recordedResult, resultDigest } from './digest.js';
export { TraceContext, parseTraceparent, formatTraceparent, traceContextFrom, type ParsedTraceparent } from './trace-context.js';
export { Lifecycle, type LifecycleState } from './lifecycle.js';
export {
  SEGMENT_CONTENT_TYPE,
  MAX_SEGMENTS_PER_RUN,
  MAX_FRAMES_PER_RUN,
  MAX_SEGMENT_BYTES,
  MAX_SEGMENTED_HEADER_BYTES,
  SegmentRef,
  MAX_SEGMENT_EXPANSION,
  RunOpenV1,
  SegmentV1,
  RunEndV1,
  RunAbandonV1,
  PartialEventV1,
  PartialResultV1,
  segmentedRunId,
  runDigest,
  requestOfRunOpen,
  type SegmentedRunIdParts,
} from './segments.js';
