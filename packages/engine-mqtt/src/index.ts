export * from './embedded/mqtt-broker.js';
export * from './embedded/packet-guard.js';
export * from './ingest/mqtt-ingest.js';
export * from './mosquitto/mosquitto-dynsec.js';
export * from './mosquitto/mosquitto-files.js';
export * from './mosquitto/mqtt-tls.js';
export * from './pki/pki.js';
export * from './results/mqtt-result-publisher.js';
