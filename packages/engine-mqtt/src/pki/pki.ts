import 'reflect-metadata'; // @peculiar/x509 resolves its parsers through tsyringe, which needs it
import { randomBytes, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { z } from 'zod';
import { ArteriaError, isValidId } from '@arteria/protocol';

/**
 * The certificate authority Arteria manages for device and broker certificates
 * (`arteria pki`). X.509 encoding is @peculiar/x509's; keys are ECDSA P-256 from node's
 * WebCrypto. Every file is written 0600: the folder holds the CA's private key.
 */

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const provider = new x509.CryptoProvider();
provider.set(webcrypto as unknown as Parameters<typeof provider.set>[0]);

const Issued = z.strictObject({
  name: z.string(),
  kind: z.enum(['device', 'service', 'server']),
  serial: z.string().regex(/^[0-9a-f]+$/),
  notAfter: z.string(),
  revokedAt: z.string().optional(),
});
const Index = z.strictObject({ issued: z.array(Issued) });
export type IssuedCertificate = z.infer<typeof Issued>;

export interface PkiPaths {
  dir: string;
  caCert: string;
  caKey: string;
  crl: string;
  index: string;
}

export const pkiPaths = (dir: string): PkiPaths => ({
  dir,
  caCert: path.join(dir, 'ca.pem'),
  caKey: path.join(dir, 'ca-key.pem'),
  crl: path.join(dir, 'crl.pem'),
  index: path.join(dir, 'issued.json'),
});

/** Where an issued certificate and its key are written: `{dir}/issued/{name with / as .}.pem|-key.pem`. */
export function issuedFiles(dir: string, name: string): { cert: string; key: string } {
  const base = path.join(dir, 'issued', name.replace('/', '.'));
  return { cert: `${base}.pem`, key: `${base}-key.pem` };
}

async function writePrivate(file: string, content: string, exclusive = false): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  if (exclusive) {
    await writeFile(file, content, { mode: 0o600, flag: 'wx' });
    return;
  }
  const tmp = `${file}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

const pem = (der: ArrayBuffer, label: string): string => {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
};

const day = 86_400_000;
const serialNumber = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return bytes.toString('hex');
};

async function readIndex(paths: PkiPaths): Promise<IssuedCertificate[]> {
  try {
    return Index.parse(JSON.parse(await readFile(paths.index, 'utf8'))).issued;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ArteriaError('CONFIG_INVALID', `no certificate authority in ${paths.dir}: run \`arteria pki init --dir ${paths.dir}\` first`, { cause: err });
    throw new ArteriaError('CONFIG_INVALID', `${paths.index}: ${(err as Error).message}`, { cause: err });
  }
}

async function loadCa(paths: PkiPaths): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const [certPem, keyPem] = await Promise.all([readFile(paths.caCert, 'utf8'), readFile(paths.caKey, 'utf8')]);
  const der = Buffer.from(keyPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
  const key = await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
  return { cert: new x509.X509Certificate(certPem), key: key };
}

export interface InitOptions {
  /** Subject common name of the CA (default "Arteria device CA"). */
  name?: string;
  validityDays?: number;
  now?: Date;
}

/** Creates the CA (key, self-signed certificate), an empty index and an empty CRL. Refuses an existing CA. */
export async function initPki(dir: string, options: InitOptions = {}): Promise<PkiPaths> {
  const paths = pkiPaths(path.resolve(dir));
  const now = options.now ?? new Date();
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']));
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: `CN=${options.name ?? 'Arteria device CA'}`,
      notBefore: now,
      notAfter: new Date(now.getTime() + (options.validityDays ?? 3650) * day),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider.get()),
      ],
    },
    provider.get(),
  );
  try {
    await writePrivate(paths.caKey, pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'), true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ArteriaError('CONFIG_INVALID', `${paths.dir} already holds a certificate authority; issue and revoke with it, or choose another --dir`, { cause: err });
    throw err;
  }
  await writePrivate(paths.caCert, cert.toString('pem') + '\n');
  await writePrivate(paths.index, `${JSON.stringify({ issued: [] }, null, 2)}\n`);
  await writeCrl(paths, { cert, key: keys.privateKey }, [], now);
  return paths;
}

export type IssueRequest =
  | { kind: 'device'; tenant: string; device: string }
  /** A platform service (`arteria-ingest`...) that logs in to a broker requiring certificates. */
  | { kind: 'service'; name: string }
  /** A broker's TLS certificate, valid for these DNS names and IP addresses. */
  | { kind: 'server'; name: string; hosts: readonly string[] };

/** The name a certificate is indexed and revoked under, and its subject common name. */
export function certificateName(request: IssueRequest): string {
  if (request.kind === 'device') {
    if (!isValidId(request.tenant) || !isValidId(request.device)) throw new ArteriaError('CONFIG_INVALID', `name the device as <tenant>/<device> (lowercase letters, digits, - and _), got ${JSON.stringify(`${request.tenant}/${request.device}`)}`);
    return `${request.tenant}/${request.device}`;
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/.test(request.name)) throw new ArteriaError('CONFIG_INVALID', `certificate name ${JSON.stringify(request.name)}: letters, digits, '.', '_' and '-'`);
  return request.name;
}

export interface IssueOptions {
  validityDays?: number;
  now?: Date;
}

/**
 * Issues a certificate and its key under the CA. A device's subject is `CN={tenant}/{device}`
 * with the URI SAN `arteria:device:{tenant}/{device}`; brokers and the embedded broker take
 * the identity from it. Issuing again for the same name replaces the files; the earlier
 * certificate stays valid until it expires or is revoked.
 */
export async function issueCertificate(dir: string, request: IssueRequest, options: IssueOptions = {}): Promise<{ cert: string; key: string; serial: string }> {
  const paths = pkiPaths(path.resolve(dir));
  const name = certificateName(request);
  const index = await readIndex(paths);
  const ca = await loadCa(paths);
  const now = options.now ?? new Date();
  const notAfter = new Date(now.getTime() + (options.validityDays ?? (request.kind === 'server' ? 825 : 365)) * day);
  if (notAfter > ca.cert.notAfter) throw new ArteriaError('CONFIG_INVALID', `the certificate would outlive the CA (valid until ${ca.cert.notAfter.toISOString()}); ask for fewer --days`);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']));
  const serial = serialNumber();
  const san: x509.JsonGeneralName[] =
    request.kind === 'server'
      ? request.hosts.map((host) => (isIP(host) === 0 ? { type: 'dns', value: host } : { type: 'ip', value: host }))
      : [{ type: 'url', value: `arteria:${request.kind}:${name}` }];
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial,
      subject: `CN=${name}`,
      issuer: ca.cert.subject,
      notBefore: now,
      notAfter,
      signingKey: ca.key,
      publicKey: keys.publicKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([request.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(san),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false, provider.get()),
      ],
    },
    provider.get(),
  );
  const files = issuedFiles(paths.dir, name);
  await writePrivate(files.key, pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'));
  await writePrivate(files.cert, cert.toString('pem') + '\n');
  index.push({ name, kind: request.kind, serial, notAfter: notAfter.toISOString() });
  await writePrivate(paths.index, `${JSON.stringify({ issued: index }, null, 2)}\n`);
  return { ...files, serial };
}

/**
 * Revokes every unrevoked certificate issued for `name` and rewrites the CRL. Returns the
 * serials revoked (none: nothing was issued to that name, or all were revoked before).
 */
export async function revokeCertificates(dir: string, name: string, now: Date = new Date()): Promise<string[]> {
  const paths = pkiPaths(path.resolve(dir));
  const index = await readIndex(paths);
  const revoked: string[] = [];
  for (const entry of index) {
    if (entry.name === name && entry.revokedAt === undefined) {
      entry.revokedAt = now.toISOString();
      revoked.push(entry.serial);
    }
  }
  if (revoked.length === 0) throw new ArteriaError('CONFIG_INVALID', `no valid certificate issued to ${JSON.stringify(name)} in ${paths.dir}`);
  await writePrivate(paths.index, `${JSON.stringify({ issued: index }, null, 2)}\n`);
  await writeCrl(paths, await loadCa(paths), index, now);
  return revoked;
}

/** Reissues the CRL (it names its next update: rerun before then, e.g. daily). */
export async function refreshCrl(dir: string, now: Date = new Date()): Promise<void> {
  const paths = pkiPaths(path.resolve(dir));
  await writeCrl(paths, await loadCa(paths), await readIndex(paths), now);
}

async function writeCrl(paths: PkiPaths, ca: { cert: x509.X509Certificate; key: CryptoKey }, index: readonly IssuedCertificate[], now: Date): Promise<void> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: ca.cert.subject,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 30 * day),
      entries: index.filter((e) => e.revokedAt !== undefined).map((e) => ({ serialNumber: e.serial, revocationDate: new Date(e.revokedAt ?? now) })),
      signingKey: ca.key,
      signingAlgorithm: ALGORITHM,
    },
    provider.get(),
  );
  // OpenSSL (Node's TLS, Mosquitto) reads the "X509 CRL" label.
  await writePrivate(paths.crl, pem(crl.rawData, 'X509 CRL'));
}

/** The certificates issued so far, with their state. */
export async function listCertificates(dir: string): Promise<IssuedCertificate[]> {
  return readIndex(pkiPaths(path.resolve(dir)));
}
