// Both ways results reach devices, over an MQTT client connection (cluster roles, any
// broker) and inside the embedded broker, run the ResultPublisher conformance suite.
import { resultPublisherConformance, startEmbeddedBroker, type ResultPublisherUnderTest } from '@arteria/testing';
import { EmbeddedBroker, MqttResultPublisher } from '@arteria/engine-mqtt';
import type { ResultPublisher } from '@arteria/ports';

const PLATFORM_SECRET = 'platform-secret-for-publisher-tests-0123456789';
const TENANTS = new Map([
  ['acme', 'acme-secret-for-publisher-tests-0123456789'],
  ['hosp2', 'hosp2-secret-for-publisher-tests-0123456789'],
]);

async function embeddedBroker(publisherOf: (broker: EmbeddedBroker) => Promise<ResultPublisher>): Promise<ResultPublisherUnderTest> {
  const broker = await startEmbeddedBroker(TENANTS, PLATFORM_SECRET);
  const publisher = await publisherOf(broker);
  return {
    publisher,
    brokerUrl: broker.url,
    tenantSecret: (tenant) => TENANTS.get(tenant) ?? '',
    close: async () => {
      await publisher.close();
      await broker.close();
    },
  };
}

resultPublisherConformance('MQTT client (service identity)', () => embeddedBroker((broker) => MqttResultPublisher.connect({ url: broker.url, serviceName: 'worker', platformSecret: PLATFORM_SECRET })));
resultPublisherConformance('inside the embedded broker', () => embeddedBroker((broker) => Promise.resolve(broker.publisher())));
