import type { Agent } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { z } from 'zod';

/**
 * How the gateway reaches the cloud through a site's HTTP(S) proxy: the object store
 * (S3 API over HTTPS) and the broker over WebSocket (wss://) are tunnelled with HTTP
 * CONNECT. Plain MQTT over TCP (mqtt://, mqtts://) cannot cross an HTTP proxy: behind
 * one, use the broker's wss:// listener.
 */
export const ProxyOptions = z.strictObject({
  /** http://[user:password@]host:port of the proxy; overrides HTTPS_PROXY / HTTP_PROXY. */
  url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// proxy URL' }).optional(),
  /** Hosts reached directly, NO_PROXY syntax (`host`, `.domain`, `*.domain`, `host:port`, IP address, CIDR range `10.0.0.0/8`, `*`); overrides NO_PROXY. */
  noProxy: z.string().optional(),
  /** Read HTTPS_PROXY, HTTP_PROXY and NO_PROXY (upper or lower case) when `url` / `noProxy` are not set. */
  fromEnvironment: z.boolean().default(true),
});
export type ProxyOptions = z.output<typeof ProxyOptions>;

export type Environment = Readonly<Record<string, string | undefined>>;

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'ws:': 80, 'https:': 443, 'wss:': 443 };

const envValue = (env: Environment, name: string): string | undefined => {
  const value = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
};

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
function splitEntry(entry: string): { name: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed?.[1] !== undefined) return { name: bracketed[1], ...(bracketed[2] === undefined ? {} : { port: Number(bracketed[2]) }) };
  const hostPort = /^([^:]+):(\d+)$/.exec(entry);
  if (hostPort?.[1] !== undefined) return { name: hostPort[1], port: Number(hostPort[2]) };
  return { name: entry };
}

/**
 * Whether an IP address lies in a CIDR range (`10.0.0.0/8`, `fd00::/8`). A host name never
 * does: ranges name addresses, and the gateway does not resolve names to pick a route
 * (curl and Go behave alike). An entry that is not a valid range matches nothing.
 */
function inRange(address: string, range: string): boolean {
  const slash = range.lastIndexOf('/');
  const network = range.slice(0, slash);
  const prefix = Number(range.slice(slash + 1));
  const family = isIP(network);
  if (family === 0 || family !== isIP(address) || !/^\d{1,3}$/.test(range.slice(slash + 1)) || prefix > (family === 4 ? 32 : 128)) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addSubnet(network, prefix, type);
  return list.check(address, type);
}

/**
 * Whether `hostname:port` is exempt from the proxy by a NO_PROXY list: `*` exempts
 * everything; `example.org` exempts it and its subdomains; `.example.org` and
 * `*.example.org` only its subdomains; an IP address exempts itself and a CIDR range
 * (`10.0.0.0/8`, `192.168.1.0/24`, `fd00::/8`) the addresses in it, when the target is
 * given as an address; a `:port` suffix limits an entry to that port.
 */
export function bypassesProxy(hostname: string, port: number, noProxy: string | undefined): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const hostIsAddress = isIP(host) !== 0;
  for (const raw of (noProxy ?? '').split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const { name, port: only } = splitEntry(entry);
    if (only !== undefined && only !== port) continue;
    if (name.includes('/')) {
      if (hostIsAddress && inRange(host, name)) return true;
    } else if (name.startsWith('*.') || name.startsWith('.')) {
      if (host.endsWith(name.replace(/^\*/, ''))) return true;
    } else if (host === name || (!hostIsAddress && host.endsWith(`.${name}`))) return true;
  }
  return false;
}

/**
 * The proxy URL a connection to `target` goes through, or undefined for a direct one:
 * the configured proxy, else HTTPS_PROXY for https:// and wss:// targets and HTTP_PROXY
 * for http:// and ws:// ones; never for MQTT over TCP; never for a host NO_PROXY exempts.
 */
export function proxyUrlFor(target: string, options: ProxyOptions | undefined, env: Environment): string | undefined {
  const url = new URL(target);
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (defaultPort === undefined) return undefined; // mqtt://, mqtts://: a raw TCP connection
  const port = url.port === '' ? defaultPort : Number(url.port);
  const fromEnv = options?.fromEnvironment ?? true;
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  const proxy = options?.url ?? (fromEnv ? envValue(env, secure ? 'https_proxy' : 'http_proxy') : undefined);
  if (proxy === undefined) return undefined;
  const noProxy = options?.noProxy ?? (fromEnv ? envValue(env, 'no_proxy') : undefined);
  return bypassesProxy(url.hostname, port, noProxy) ? undefined : proxy;
}

/** An agent that tunnels connections to `target` through the proxy (HTTP CONNECT), or undefined for a direct connection. */
export function proxyAgentFor(target: string, options: ProxyOptions | undefined, env: Environment): Agent | undefined {
  const proxy = proxyUrlFor(target, options, env);
  // Kept alive: one CONNECT carries many S3 requests, as a direct socket would.
  return proxy === undefined ? undefined : new HttpsProxyAgent(proxy, { keepAlive: true });
}

/** The proxy URL with any password replaced, for logs and `doctor`. */
export function describeProxy(proxy: string): string {
  const url = new URL(proxy);
  if (url.password !== '') url.password = '***';
  return url.toString().replace(/\/$/, '');
}
