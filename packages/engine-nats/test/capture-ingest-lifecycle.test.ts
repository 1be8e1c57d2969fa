// The capture ingest's lifecycle on a real nats-server: it admits what the stream holds,
// drains separately from closing, closes once, and refuses to start without a server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { ArteriaError, type ParsedTopic } from '@arteria/protocol';
import type { IngestHandler } from '@arteria/ports';
import { NatsCaptureIngestService, type NatsCaptureIngestOptions } from '@arteria/engine-nats';
import { TestNatsServer, freePort } from '@arteria/testing';

const options = (servers: string[], stream: string): NatsCaptureIngestOptions => ({ servers, stream, consumer: `${stream}-ingest`, replicas: 1, maxAgeMs: 60_000, ackWaitMs: 5_000, maxInHand: 4 });

/** Notes each request it is handed; admits all of them. */
function notingIngest(): IngestHandler & { seen: ParsedTopic[] } {
  const seen: ParsedTopic[] = [];
  return {
    seen,
    handle: (topic) => {
      seen.push(topic);
      return Promise.resolve({ status: 'accepted', requestId: `r${seen.length}` });
    },
  };
}

describe('NatsCaptureIngestService lifecycle', () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await TestNatsServer.start();
  }, 30_000);
  afterAll(async () => server?.stop());

  it('admits from the stream, drains (state draining), then closes once for every caller', async () => {
    const ingest = notingIngest();
    const service = await NatsCaptureIngestService.start(options([server.natsUrl], 'LIFE_A'), { ingest });
    expect(service.state).toBe('running');
    const nc = await connect({ servers: server.natsUrl });
    try {
      nc.publish('arteria.v1.acme.cath-lab-1.requests', new TextEncoder().encode('{}'));
      await nc.flush();
      await expect.poll(() => ingest.seen.length, { timeout: 10_000 }).toBe(1);
      expect(ingest.seen[0]).toMatchObject({ tenant: 'acme', device: 'cath-lab-1', kind: 'requests' });
    } finally {
      await nc.close();
    }
    const draining = service.drain(1_000);
    expect(service.state).toBe('draining');
    await Promise.all([draining, service.close(), service.close()]);
    expect(service.state).toBe('closed');
  });

  it('closes at the end of a scope (await using)', async () => {
    let scoped: NatsCaptureIngestService | undefined;
    {
      await using service = await NatsCaptureIngestService.start(options([server.natsUrl], 'LIFE_A'), { ingest: notingIngest() });
      scoped = service;
    }
    expect(scoped.state).toBe('closed');
  });

  it('refuses to start when no server answers, with a typed error', async () => {
    const port = await freePort();
    await expect(NatsCaptureIngestService.start(options([`nats://127.0.0.1:${port}`], 'LIFE_C'), { ingest: notingIngest() })).rejects.toBeInstanceOf(ArteriaError);
  });
});
