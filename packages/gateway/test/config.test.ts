import { describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { MIN_PART_SIZE_BYTES, parseGatewayOptions } from '@arteria/gateway';

const valid = {
  tenant: 'acme',
  device: 'cathlab-1',
  token: 'token',
  mqttUrl: 'mqtt://127.0.0.1:1883',
  s3: { endpoint: 'http://127.0.0.1:4568', bucket: 'arteria-runs', accessKeyId: 'key', secretAccessKey: 'secret' },
  outboxPath: '/var/lib/arteria/outbox.sqlite',
};

function failure(input: unknown): ArteriaError {
  try {
    parseGatewayOptions(input);
  } catch (err) {
    if (err instanceof ArteriaError) return err;
    throw err;
  }
  throw new Error('expected the options to be refused');
}

describe('parseGatewayOptions', () => {
  it('fills defaults and freezes the result', () => {
    const config = parseGatewayOptions(valid);
    expect(config).toMatchObject({
      algorithm: 'contrast-injection@^1',
      partSizeBytes: 8 * 1024 * 1024,
      uploadConcurrency: 4,
      resendIntervalMs: 30_000,
      resultTimeoutMs: 120_000,
      maxOutboxEntries: 1000,
      // Compressed while the uplink is slow, and only for a platform that says it expands them.
      segmentEncoding: 'auto',
      s3: { region: 'us-east-1' },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.s3)).toBe(true);
  });

  it('refuses bad values with CONFIG_INVALID naming the field', () => {
    expect(failure({ ...valid, partSizeBytes: 1024 * 1024 })).toMatchObject({ code: 'CONFIG_INVALID' });
    expect(failure({ ...valid, partSizeBytes: MIN_PART_SIZE_BYTES - 1 }).message).toMatch(/^gateway option partSizeBytes: .*5242880/);
    expect(failure({ ...valid, tenant: 'Acme/1' }).message).toMatch(/^gateway option tenant:/);
    expect(failure({ ...valid, s3: { ...valid.s3, bucket: undefined } }).message).toMatch(/^gateway option s3\.bucket:/);
    expect(failure({ ...valid, mqttUrl: 'http://broker' }).message).toMatch(/^gateway option mqttUrl:/);
    expect(failure({ ...valid, resendIntervalMs: 0 }).message).toMatch(/^gateway option resendIntervalMs:/);
    expect(failure({ ...valid, algorithm: 'contrast injection' }).message).toMatch(/^gateway option algorithm:/);
  });

  it('refuses unknown options, naming them', () => {
    expect(failure({ ...valid, resendInterval: 5 }).message).toMatch(/resendInterval/);
    expect(failure({ ...valid, s3: { ...valid.s3, forcePathStyle: true } }).message).toMatch(/s3.*forcePathStyle/);
  });
});
