import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseGatewayOptions } from '@arteria/gateway';
import { GatewayServiceConfig } from '@arteria/gateway-site';

describe('deploy/gateway/gateway.example.json', () => {
  it('is a valid service configuration with valid gateway options', async () => {
    const path = fileURLToPath(new URL('../../../deploy/gateway/gateway.example.json', import.meta.url));
    const service = GatewayServiceConfig.parse(JSON.parse(await readFile(path, 'utf8')));
    const options = parseGatewayOptions(service.gateway);
    expect(options.deidentification.enabled).toBe(true);
    expect(service.dicom?.port).toBe(11112);
    // What a site copies holds no object-store key: it uploads with the platform's short-lived grants.
    expect(options.s3.accessKeyId).toBeUndefined();
    expect(options.s3.secretAccessKey).toBeUndefined();
  });
});
