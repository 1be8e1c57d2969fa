import { readFile } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';

/** CA, client certificate and key for an mqtts:// broker, as the MQTT client takes them. */
export interface MqttTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * Reads the TLS files of the `mqtt` config section (empty path: not used). AWS IoT Core
 * and brokers with `require_certificate` authenticate the platform's processes by
 * certificate; a private CA verifies an on-prem broker.
 */
export async function loadMqttTls(files: { caFile: string; certFile: string; keyFile: string }): Promise<MqttTls> {
  if ((files.certFile === '') !== (files.keyFile === '')) {
    throw new ArteriaError('CONFIG_INVALID', 'mqtt.certFile and mqtt.keyFile go together: give both or neither');
  }
  const read = async (field: string, file: string): Promise<Buffer | undefined> => {
    if (file === '') return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      throw new ArteriaError('CONFIG_INVALID', `mqtt.${field} ${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  const [ca, cert, key] = await Promise.all([read('caFile', files.caFile), read('certFile', files.certFile), read('keyFile', files.keyFile)]);
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}
