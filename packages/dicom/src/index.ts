export type { DicomHeader, FrameStack } from "./types.js";
