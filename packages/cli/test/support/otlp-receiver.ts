import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** One span as an OTLP/HTTP JSON export carries it (ids in hex). */
export interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
  /** The span's events, by name and time. */
  events: { name: string; timeMs: number }[];
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: { key: string; value: OtlpValue }[];
  events?: { name: string; timeUnixNano: string | number }[];
}
interface OtlpExport {
  resourceSpans?: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

/** OTLP JSON ids are hex; the protobuf-JSON mapping would give base64: both read as hex. */
const hex = (id: string | undefined): string | undefined => {
  if (id === undefined || id === '') return undefined;
  return /^[0-9a-f]+$/.test(id) ? id : Buffer.from(id, 'base64').toString('hex');
};

const valueOf = (v: OtlpValue): string | number | boolean => v.stringValue ?? v.boolValue ?? v.doubleValue ?? Number(v.intValue);

/**
 * A collector's OTLP/HTTP traces endpoint in the test process: a plain node:http server
 * that decodes the JSON export requests (`POST /v1/traces`) and keeps their spans.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received (any path). */
  requests = 0;
  readonly #server: Server;
  readonly url: string;

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(): Promise<OtlpReceiver> {
    const holder: { receiver?: OtlpReceiver } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const receiver = holder.receiver;
        if (receiver === undefined) return;
        receiver.requests += 1;
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
          res.writeHead(415).end();
          return;
        }
        receiver.#take(JSON.parse(body.toString('utf8')) as OtlpExport);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiver = new OtlpReceiver(server, `http://127.0.0.1:${(server.address() as { port: number }).port}`);
    holder.receiver = receiver;
    return receiver;
  }

  #take(payload: OtlpExport): void {
    for (const rs of payload.resourceSpans ?? []) {
      const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans ?? []) {
        for (const span of ss.spans ?? []) {
          this.spans.push({
            service,
            name: span.name,
            traceId: hex(span.traceId) ?? '',
            spanId: hex(span.spanId) ?? '',
            parentSpanId: hex(span.parentSpanId),
            startMs: Number(span.startTimeUnixNano) / 1e6,
            endMs: Number(span.endTimeUnixNano) / 1e6,
            attributes: Object.fromEntries((span.attributes ?? []).map((a) => [a.key, valueOf(a.value)])),
            events: (span.events ?? []).map((e) => ({ name: e.name, timeMs: Number(e.timeUnixNano) / 1e6 })),
          });
        }
      }
    }
  }

  /** The spans of one trace, by name (one span per name expected). */
  trace(traceId: string): Map<string, ReceivedSpan> {
    return new Map(this.spans.filter((s) => s.traceId === traceId).map((s) => [s.name, s]));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.#server.close((err) => (err ? reject(err) : resolve())));
  }
}
