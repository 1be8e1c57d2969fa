// The gateway's site-facing parts: the DICOM port (C-STORE in, SR out), the service that runs
// the gateway beside the modality (`arteria-gateway run|doctor`) and on-site result outputs.
export { GATEWAY_PROGRAM, GATEWAY_COMMANDS } from './commands.js';
export { DicomReceiver, type DicomReceiverOptions, type ReceivedInstance, type ReceivedRun } from './dimse/receiver.js';
export { DicomIntake } from './dimse/intake.js';
export { ResultDelivery, type ResultDeliveryOptions, type DeliveredResult } from './dimse/delivery.js';
export { buildResultReport, BASIC_TEXT_SR } from './dimse/sr.js';
export { storeFile, echoNode, type DicomNode } from './dimse/scu.js';
export { GatewayService } from './service/service.js';
export { GatewayServiceConfig, readServiceConfig } from './service/service-config.js';
export { runDoctor, type CheckResult, type CheckState, type DoctorOptions } from './service/doctor.js';
export { LocalMqttOptions, LocalMqttPublisher, type LocalMqttOptionsInput } from './results/local-mqtt.js';
