import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Which modules a process that opens tracing resolves, from a resolve hook in that process. */
async function modulesResolved(endpoint: string | undefined): Promise<{ enabled: boolean; sdk: boolean; api: boolean; reported: boolean }> {
  const { stdout, stderr } = await run(process.execPath, ['--import', fixture('record-imports.mjs'), fixture('open-tracing.mjs'), ...(endpoint === undefined ? [] : [endpoint])]);
  const urls = stderr.split('\n').filter((l) => l.startsWith('resolved '));
  return {
    enabled: stdout.includes('enabled=true'),
    reported: stdout.includes('error=TRACING_UNAVAILABLE: could not send the last spans to the OpenTelemetry collector at http://127.0.0.1:9'),
    sdk: urls.some((u) => /@opentelemetry\/(sdk-trace-base|exporter-trace-otlp-http|resources)\//.test(u)),
    api: urls.some((u) => u.includes('@opentelemetry/api/')),
  };
}

describe('tracing off costs no SDK; an unreachable collector fails nothing', () => {
  it('loads only the OpenTelemetry API without an endpoint, and the SDK and exporter with one', async () => {
    expect(await modulesResolved(undefined)).toEqual({ enabled: false, sdk: false, api: true, reported: false });
    // Nothing listens there: the SDK was loaded to try, and the lost span is reported, not thrown (exit 0).
    expect(await modulesResolved('http://127.0.0.1:9')).toEqual({ enabled: true, sdk: true, api: true, reported: true });
  }, 90_000);
});
