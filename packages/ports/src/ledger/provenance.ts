import { z } from 'zod';
import { RequestV1, ResultV1, type Timings } from '@arteria/protocol';
import { recordDefect, type ChainRecord } from './chain.js';
import type { RecordSealCheck } from './checkpoint.js';

/** What the chain says about one request: who asked, on what, what ran, where, and what came out. */
export interface Provenance {
  requestId: string;
  tenant?: string;
  device?: string;
  requested?: string;
  inputs: Array<{ uri: string; sha256: string; size: number }>;
  status?: ResultV1['status'];
  algorithm?: { name: string; version: string; digest: string; model?: { name: string; digest: string } };
  errorCode?: string;
  worker?: string;
  timings: Timings;
  /** `sha256:` of the recorded result (what ResultV1.recordHash carries). */
  resultHash?: string;
  records: Array<{ seq: number; kind: ChainRecord['kind']; hash: string; recordedAt: number; intact: boolean }>;
}

const AcceptedBody = z.strictObject({ tenant: z.string(), device: z.string(), algorithm: z.string(), acceptedAt: z.number(), request: RequestV1 });

/** Reads a request's chain records (first of each kind counts, as in the ledger) into its provenance. */
export function provenanceOf(requestId: string, records: readonly ChainRecord[], verifySignature?: RecordSealCheck): Provenance {
  const p: Provenance = { requestId, inputs: [], timings: {}, records: [] };
  const seen = new Set<string>();
  for (const r of records) {
    p.records.push({ seq: r.seq, kind: r.kind, hash: r.hash, recordedAt: r.recordedAt, intact: recordDefect(r, verifySignature) === undefined });
    if (seen.has(r.kind)) continue;
    seen.add(r.kind);
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      continue; // an unreadable body shows as a record that is not intact
    }
    if (r.kind === 'accepted') {
      const a = AcceptedBody.safeParse(body);
      if (!a.success) continue;
      Object.assign(p, { tenant: a.data.tenant, device: a.data.device, requested: a.data.algorithm });
      p.inputs = a.data.request.inputs.map(({ uri, sha256, size }) => ({ uri, sha256, size }));
      p.timings = { ...a.data.request.timings, enqueued: a.data.acceptedAt, ...p.timings };
    } else {
      const result = ResultV1.safeParse(body);
      if (!result.success) continue;
      const res = result.data;
      Object.assign(p, { tenant: res.tenant, device: res.device, status: res.status, resultHash: r.bodyHash });
      if (res.algorithm !== undefined) p.algorithm = res.algorithm;
      if (res.error !== undefined) p.errorCode = res.error.code;
      if (r.worker !== undefined) p.worker = r.worker;
      p.timings = { ...p.timings, ...res.timings };
    }
  }
  return p;
}
