import { access } from 'node:fs/promises';
import path from 'node:path';
import { issueCertificate, issuedFiles, pkiPaths } from '@arteria/engine-mqtt';
import { usageError } from '@arteria/command';
import { int } from './args.js';

/** The embedded broker's certificate: its name in the CA's index, and the addresses it is valid for. */
const BROKER_CERTIFICATE = 'arteria-up-broker';
const BROKER_HOSTS = ['127.0.0.1', 'localhost'];

export interface EmbeddedBrokerTls {
  port: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  crlFile: string;
  requireCertificate: boolean;
}

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/**
 * The embedded broker's TLS listener from `arteria up`'s flags: with --pki-dir, the
 * broker's certificate is issued from Arteria's CA on first use (kept there for the next
 * start), devices' certificates are checked against the CA and its CRL.
 */
export async function embeddedBrokerTls(values: { 'pki-dir'?: string; 'mqtts-port'?: string; 'require-client-certs'?: boolean }): Promise<EmbeddedBrokerTls | undefined> {
  const dir = values['pki-dir'];
  if (dir === undefined) {
    if (values['require-client-certs'] === true || values['mqtts-port'] !== undefined) throw usageError('--require-client-certs and --mqtts-port need --pki-dir (the CA from `arteria pki init`)');
    return undefined;
  }
  const paths = pkiPaths(path.resolve(dir));
  if (!(await exists(paths.caCert)) || !(await exists(paths.caKey))) throw usageError(`--pki-dir ${dir} holds no CA: create one with \`arteria pki init --dir ${dir}\``);
  let files = issuedFiles(paths.dir, BROKER_CERTIFICATE);
  if (!(await exists(files.cert)) || !(await exists(files.key))) files = await issueCertificate(paths.dir, { kind: 'server', name: BROKER_CERTIFICATE, hosts: BROKER_HOSTS });
  return {
    port: values['mqtts-port'] === undefined ? 18833 : int(values['mqtts-port'], '--mqtts-port'),
    caFile: paths.caCert,
    certFile: files.cert,
    keyFile: files.key,
    crlFile: paths.crl,
    requireCertificate: values['require-client-certs'] === true,
  };
}
