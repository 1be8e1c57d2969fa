import { describe, expect, it } from 'vitest';
import { ReconnectBackoff, backoffCeilingMs, bypassesProxy, describeProxy, parseGatewayOptions, proxyUrlFor, reconnectDelayMs } from '@arteria/gateway';

const SETTINGS = { initialMs: 1_000, maxMs: 30_000 };

describe('reconnect backoff (exponential, full jitter)', () => {
  it('grows its ceiling from the initial delay by doubling, up to the cap', () => {
    expect(Array.from({ length: 8 }, (_, attempt) => backoffCeilingMs(attempt, SETTINGS))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(backoffCeilingMs(10_000, SETTINGS)).toBe(30_000);
    // The extremes of the random source give the ends of each window.
    expect(reconnectDelayMs(3, SETTINGS, () => 0)).toBe(0);
    expect(reconnectDelayMs(3, SETTINGS, () => 0.999_999)).toBe(8_000);
  });

  it('draws each delay within [0, ceiling], spread over the whole window', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const delays = Array.from({ length: 2_000 }, () => reconnectDelayMs(attempt, SETTINGS));
      const ceiling = backoffCeilingMs(attempt, SETTINGS);
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...delays)).toBeLessThanOrEqual(ceiling);
      // Spread: every tenth of the window is hit (a fixed period would hit one).
      const deciles = new Set(delays.map((d) => Math.min(9, Math.floor((d / ceiling) * 10))));
      expect(deciles.size).toBe(10);
    }
  });

  it('counts attempts, and starts over after a good connection', () => {
    const top = (): number => 0.999_999;
    const backoff = new ReconnectBackoff({ initialMs: 100, maxMs: 500 }, top);
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([100, 200, 400, 500, 500]);
    expect(backoff.attempt).toBe(5);
    backoff.reset();
    expect(backoff.next()).toBe(100);
    expect(() => new ReconnectBackoff({ initialMs: 500, maxMs: 100 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
  });

  it('is configured by mqttReconnectPeriodMs (first ceiling) and mqttReconnectMaxMs (cap)', () => {
    const base = { tenant: 'acme', device: 'd1', token: 't', mqttUrl: 'wss://broker.example.org', s3: { endpoint: 'https://s3.example.org', bucket: 'runs', accessKeyId: 'a', secretAccessKey: 's' }, outboxPath: '/tmp/o.db' };
    expect(parseGatewayOptions(base)).toMatchObject({ mqttReconnectPeriodMs: 1_000, mqttReconnectMaxMs: 30_000 });
    expect(() => parseGatewayOptions({ ...base, mqttReconnectPeriodMs: 5_000, mqttReconnectMaxMs: 1_000 })).toThrow(/mqttReconnectMaxMs/);
    expect(parseGatewayOptions({ ...base, proxy: { url: 'http://proxy.hospital.local:3128', noProxy: '.hospital.local' } }).proxy).toEqual({ url: 'http://proxy.hospital.local:3128', noProxy: '.hospital.local', fromEnvironment: true });
    expect(() => parseGatewayOptions({ ...base, proxy: { url: 'socks5://proxy:1080' } })).toThrow(/proxy\.url/);
  });
});

describe('which connections go through the site proxy', () => {
  const env = { HTTPS_PROXY: 'http://proxy.hospital.local:3128', HTTP_PROXY: 'http://plain-proxy.hospital.local:8080', NO_PROXY: 'localhost,.hospital.local,10.1.2.3,minio:9000' };

  it('uses HTTPS_PROXY for https:// and wss://, HTTP_PROXY for http:// and ws://, none for MQTT over TCP', () => {
    expect(proxyUrlFor('https://s3.eu-central-1.amazonaws.com', undefined, env)).toBe('http://proxy.hospital.local:3128');
    expect(proxyUrlFor('wss://iot.example.com/mqtt', undefined, env)).toBe('http://proxy.hospital.local:3128');
    expect(proxyUrlFor('http://s3.example.com:9000', undefined, env)).toBe('http://plain-proxy.hospital.local:8080');
    expect(proxyUrlFor('ws://broker.example.com:8083', undefined, env)).toBe('http://plain-proxy.hospital.local:8080');
    expect(proxyUrlFor('mqtts://broker.example.com:8883', undefined, env)).toBeUndefined();
    expect(proxyUrlFor('mqtt://broker.example.com', undefined, env)).toBeUndefined();
    expect(proxyUrlFor('https://s3.example.com', undefined, { https_proxy: 'http://lower:3128' })).toBe('http://lower:3128');
    expect(proxyUrlFor('https://s3.example.com', undefined, {})).toBeUndefined();
  });

  it('exempts what NO_PROXY names: hosts with their subdomains, .domain suffixes, host:port', () => {
    expect(proxyUrlFor('https://pacs.hospital.local', undefined, env)).toBeUndefined();
    expect(proxyUrlFor('https://localhost:8443', undefined, env)).toBeUndefined();
    expect(proxyUrlFor('https://10.1.2.3', undefined, env)).toBeUndefined();
    expect(proxyUrlFor('http://minio:9000', undefined, env)).toBeUndefined();
    expect(proxyUrlFor('http://minio:9001', undefined, env)).toBe('http://plain-proxy.hospital.local:8080');
    expect(proxyUrlFor('https://hospital.local.example.com', undefined, env)).toBe('http://proxy.hospital.local:3128');
    expect(bypassesProxy('s3.amazonaws.com', 443, 'amazonaws.com')).toBe(true);
    expect(bypassesProxy('notamazonaws.com', 443, 'amazonaws.com')).toBe(false);
    expect(bypassesProxy('a.example.org', 443, '*.example.org')).toBe(true);
    expect(bypassesProxy('example.org', 443, '.example.org')).toBe(false);
    expect(bypassesProxy('::1', 443, '[::1]')).toBe(true);
    expect(bypassesProxy('anything', 1, '*')).toBe(true);
  });

  it('exempts addresses inside a CIDR range of NO_PROXY (IPv4 and IPv6), never host names', () => {
    const noProxy = '10.0.0.0/8, 192.168.1.0/24,fd00::/8 172.16.0.0/12:9000';
    expect(bypassesProxy('10.200.3.4', 443, noProxy)).toBe(true);
    expect(bypassesProxy('11.0.0.1', 443, noProxy)).toBe(false);
    expect(bypassesProxy('192.168.1.255', 443, noProxy)).toBe(true);
    expect(bypassesProxy('192.168.2.1', 443, noProxy)).toBe(false);
    expect(bypassesProxy('[fd12:3456::1]', 443, noProxy)).toBe(true);
    expect(bypassesProxy('fe80::1', 443, noProxy)).toBe(false);
    // A port suffix limits the range to that port.
    expect(bypassesProxy('172.20.0.5', 9000, noProxy)).toBe(true);
    expect(bypassesProxy('172.20.0.5', 443, noProxy)).toBe(false);
    // Names are not resolved to find a range: a name is matched as a name only.
    expect(bypassesProxy('minio.hospital.local', 443, noProxy)).toBe(false);
    // Malformed ranges exempt nothing; a /0 exempts its whole family.
    expect(bypassesProxy('10.0.0.1', 443, '10.0.0.0/33,10.0.0.0/x,nonsense/8')).toBe(false);
    expect(bypassesProxy('203.0.113.9', 443, '0.0.0.0/0')).toBe(true);
    expect(bypassesProxy('2001:db8::1', 443, '0.0.0.0/0')).toBe(false);
    // An address is not a domain: 10.1.2.3 does not exempt x.10.1.2.3, nor 2.3 exempt 10.1.2.3.
    expect(bypassesProxy('10.1.2.3', 443, '2.3')).toBe(false);
    expect(proxyUrlFor('https://10.20.30.40:9000', undefined, { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '10.0.0.0/8' })).toBeUndefined();
    expect(proxyUrlFor('https://[fd00::5]', undefined, { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'fd00::/8' })).toBeUndefined();
    expect(proxyUrlFor('https://10.20.30.40', { url: 'http://proxy:3128', noProxy: '10.30.0.0/16', fromEnvironment: true }, {})).toBe('http://proxy:3128');
  });

  it('lets the gateway config override the environment, or ignore it', () => {
    expect(proxyUrlFor('https://s3.example.com', { url: 'http://configured:3128', fromEnvironment: true }, env)).toBe('http://configured:3128');
    expect(proxyUrlFor('https://pacs.hospital.local', { url: 'http://configured:3128', fromEnvironment: true }, env)).toBeUndefined();
    expect(proxyUrlFor('https://pacs.hospital.local', { url: 'http://configured:3128', noProxy: '', fromEnvironment: true }, env)).toBe('http://configured:3128');
    expect(proxyUrlFor('https://s3.example.com', { fromEnvironment: false }, env)).toBeUndefined();
    expect(describeProxy('http://user:pa55@proxy:3128')).toBe('http://user:***@proxy:3128');
  });
});
