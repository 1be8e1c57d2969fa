import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { LocalMqttOptions } from '../results/local-mqtt.js';

const aeTitle = z.string().regex(/^[ -~]{1,16}$/, 'must be 1-16 printable ASCII characters').refine((s) => !s.includes('\\'), 'must not contain a backslash');

/** The gateway service's file (`/etc/arteria/gateway.json`): the Gateway's options plus its on-site connections. */
export const GatewayServiceConfig = z.strictObject({
  /** The Gateway options (tenant, device, token, mqttUrl, s3, outboxPath, deidentification, ...). */
  gateway: z.record(z.string(), z.unknown()),
  /** The C-STORE SCP the modality sends runs to. */
  dicom: z
    .strictObject({
      aeTitle: aeTitle.default('ARTERIA'),
      port: z.number().int().min(1).max(65535).default(11112),
      host: z.string().default('0.0.0.0'),
      /** A series is a run once no instance arrived for this long. */
      stableMs: z.number().int().positive().default(5_000),
      /** Default `{outboxPath}.incoming`. */
      folder: z.string().optional(),
      /** Only these modalities (calling AE titles) may send; absent: any. */
      callingAeTitles: z.array(aeTitle).max(64).optional(),
      /**
       * Send a native multi-frame instance as a segmented run while its C-STORE still arrives
       * (an algorithm the platform answers NOT_INCREMENTAL for gets the stored file whole).
       */
      streamWhileArriving: z.boolean().default(true),
    })
    .optional(),
  /** A folder the modality (or a script) drops runs into. */
  watchFolder: z.strictObject({ folder: z.string().min(1), stableMs: z.number().int().positive().default(5_000) }).optional(),
  /** Where results go on-site. */
  results: z
    .strictObject({
      /** PACS or viewer receiving a Basic Text SR per result. */
      node: z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535), aeTitle, timeoutMs: z.number().int().positive().default(30_000) }).optional(),
      webhookUrl: z.url().optional(),
      /** A broker on the hospital network receiving the same event as the webhook (QoS 1). */
      mqtt: LocalMqttOptions.optional(),
      /** Default `{outboxPath}.reports`. */
      folder: z.string().optional(),
      attempts: z.number().int().min(1).default(5),
      retryDelayMs: z.number().int().positive().default(2_000),
      /** Results still undelivered after their tries are tried again this often. */
      redeliverIntervalMs: z.number().int().positive().default(60_000),
    })
    .optional(),
});
export type GatewayServiceConfig = z.output<typeof GatewayServiceConfig>;

export async function readServiceConfig(path: string): Promise<GatewayServiceConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = GatewayServiceConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('CONFIG_INVALID', `${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return parsed.data;
}
