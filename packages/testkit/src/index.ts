export { accepts, freePort, freePorts, isFree, waitForPort } from './ports.js';
export { deflateBomb, element, imageHeader, nativeRun, nestedSequences, part10, DEFLATED, type Geometry } from './hostile-dicom.js';
export { TestSqsServer } from './sqs-server.js';
export { spawnMosquitto, type MosquittoProcess } from './mosquitto.js';
