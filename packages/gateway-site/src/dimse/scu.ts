import dimse from 'dcmjs-dimse';
import { ArteriaError } from '@arteria/protocol';
import { quietDimse } from './receiver.js';

export interface DicomNode {
  host: string;
  port: number;
  /** The receiving node's AE title. */
  calledAeTitle: string;
  /** The gateway's AE title as the caller. */
  callingAeTitle: string;
  timeoutMs: number;
}

/** Sends one Part 10 file by C-STORE; resolves on a success (or warning) status, rejects otherwise. */
export function storeFile(path: string, node: DicomNode): Promise<void> {
  quietDimse();
  return new Promise<void>((resolve, reject) => {
    const client = new dimse.Client();
    const request = new dimse.requests.CStoreRequest(path);
    let status: number | undefined;
    request.on('response', (response: InstanceType<typeof dimse.responses.CStoreResponse>) => {
      status = response.getStatus();
    });
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    client.on('networkError', (err: Error) => settle(new ArteriaError('STORAGE_UNAVAILABLE', `C-STORE to ${node.calledAeTitle}@${node.host}:${node.port} failed: ${err.message}`, { cause: err })));
    client.on('associationRejected', () => settle(new ArteriaError('STORAGE_UNAVAILABLE', `${node.calledAeTitle}@${node.host}:${node.port} rejected the association`)));
    client.on('closed', () => {
      // 0x0000 success; 0xB000-0xB007 are warnings (stored, coerced).
      if (status !== undefined && (status === 0 || (status & 0xf000) === 0xb000)) settle();
      else settle(new ArteriaError('STORAGE_UNAVAILABLE', `C-STORE to ${node.calledAeTitle} ended with status ${status === undefined ? 'none' : `0x${status.toString(16)}`}`));
    });
    client.addRequest(request);
    client.send(node.host, node.port, node.callingAeTitle, node.calledAeTitle, { connectTimeout: node.timeoutMs, associationTimeout: node.timeoutMs, pduTimeout: node.timeoutMs });
  });
}

/** C-ECHO: resolves true when the node accepted the association and answered with success. */
export function echoNode(node: Omit<DicomNode, 'timeoutMs'> & { timeoutMs: number }): Promise<boolean> {
  quietDimse();
  return new Promise<boolean>((resolve) => {
    const client = new dimse.Client();
    const request = new dimse.requests.CEchoRequest();
    let ok = false;
    // A peer that accepts the connection but never speaks DICOM would otherwise keep us waiting.
    const timer = setTimeout(() => {
      resolve(false);
      try {
        client.abort();
      } catch (err) {
        void err; // nothing was associated: there is nothing to abort
      }
    }, node.timeoutMs);
    client.on('closed', () => clearTimeout(timer));
    request.on('response', (response: InstanceType<typeof dimse.responses.CEchoResponse>) => {
      ok = response.getStatus() === 0;
    });
    client.on('networkError', () => resolve(false));
    client.on('associationRejected', () => resolve(false));
    client.on('closed', () => resolve(ok));
    client.addRequest(request);
    client.send(node.host, node.port, node.callingAeTitle, node.calledAeTitle, { connectTimeout: node.timeoutMs, associationTimeout: node.timeoutMs, pduTimeout: node.timeoutMs });
  });
}
