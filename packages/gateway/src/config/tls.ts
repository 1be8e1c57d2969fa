import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

/**
 * TLS for the MQTT connection (mqtts://): a private CA for on-prem brokers, and a client
 * certificate where the broker authenticates devices by certificate (AWS IoT Core, EMQX
 * or Mosquitto with `require_certificate`). Paths, so keys never sit in a config file.
 */
export const MqttTlsOptions = z.strictObject({
  /** PEM bundle of the CA(s) that signed the broker's certificate; default: the system's. */
  caFile: z.string().min(1).optional(),
  /** PEM client certificate and its key, for brokers that require one. */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
});
export type MqttTlsOptions = z.infer<typeof MqttTlsOptions>;

export interface MqttTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the files named in the options; a missing or unreadable one is CONFIG_INVALID naming it. */
export async function loadMqttTls(options: MqttTlsOptions | undefined): Promise<MqttTlsMaterial> {
  if (!options) return {};
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new ArteriaError('CONFIG_INVALID', 'tls.certFile and tls.keyFile go together: give both or neither');
  }
  const read = async (field: string, file: string | undefined): Promise<Buffer | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      throw new ArteriaError('CONFIG_INVALID', `tls.${field} ${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  const [ca, cert, key] = await Promise.all([read('caFile', options.caFile), read('certFile', options.certFile), read('keyFile', options.keyFile)]);
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}
