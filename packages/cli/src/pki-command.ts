import path from 'node:path';
import { parseArgs } from 'node:util';
import { initPki, issueCertificate, listCertificates, pkiPaths, refreshCrl, revokeCertificates, type IssueRequest } from '@arteria/engine-mqtt';
import { usageError } from '@arteria/command';
import { int } from './args.js';
import { parseDeviceName } from './cluster/provision.js';

export const PKI_HELP = `arteria pki init [--dir D] [--days N]        a certificate authority for devices and brokers
                                             (ECDSA P-256; every file mode 0600) and an empty CRL
arteria pki issue <tenant/device> [--dir D] [--days N]
                                             a device certificate (CN and URI SAN name the device)
arteria pki issue --service <name>           a platform service's client certificate (arteria-ingest, ...)
arteria pki issue --server <name> --host <name|ip> ...
                                             a broker's TLS certificate for those names
arteria pki revoke <tenant/device|name> [--dir D]
                                             revoke every certificate issued to it; rewrites crl.pem
arteria pki crl [--dir D]                    reissue the CRL (it is valid 30 days: refresh it daily)
arteria pki list [--dir D]                   certificates issued, with serial, expiry and revocation
  --dir <dir>     the CA's folder (default .arteria/pki)
  --days <n>      validity (default: CA 3650, devices and services 365, servers 825)`;

export async function pkiCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: path.join('.arteria', 'pki') },
      days: { type: 'string' },
      service: { type: 'string' },
      server: { type: 'string' },
      host: { type: 'string', multiple: true, default: [] },
    },
  });
  const dir = path.resolve(values.dir);
  const days = values.days === undefined ? {} : { validityDays: int(values.days, '--days') };
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  switch (action) {
    case 'init': {
      const paths = await initPki(dir, days);
      say(`certificate authority in ${paths.dir}: ${paths.caCert} (give it to brokers and gateways), key ${paths.caKey} (keep it here), CRL ${paths.crl}`);
      return 0;
    }
    case 'issue': {
      const issued = await issueCertificate(dir, issueRequest(positionals, values), days);
      say(`issued ${issued.cert} and its key ${issued.key} (serial ${issued.serial}); CA ${pkiPaths(dir).caCert}`);
      return 0;
    }
    case 'revoke': {
      const [name, ...extra] = positionals;
      if (name === undefined || extra.length > 0) throw usageError('name one certificate holder: arteria pki revoke <tenant/device|name>');
      const serials = await revokeCertificates(dir, name);
      const atIngest = name.includes('/') ? `, and meanwhile stop the device at ingest with \`arteria cluster device revoke ${name}\`` : '';
      say(`revoked ${serials.length} certificate(s) of ${name} (${serials.join(', ')}); CRL ${pkiPaths(dir).crl}: the embedded broker rereads it; Mosquitto reads it only at start, so restart it${atIngest}`);
      return 0;
    }
    case 'crl':
      await refreshCrl(dir);
      say(`reissued ${pkiPaths(dir).crl}`);
      return 0;
    case 'list':
      for (const c of await listCertificates(dir)) say(`${c.kind.padEnd(7)} ${c.name.padEnd(32)} serial ${c.serial} until ${c.notAfter}${c.revokedAt === undefined ? '' : ` REVOKED ${c.revokedAt}`}`);
      return 0;
    default:
      throw usageError(`unknown pki action ${JSON.stringify(action ?? '')}`);
  }
}

function issueRequest(positionals: string[], values: { service?: string; server?: string; host: string[] }): IssueRequest {
  const chosen = [positionals.length > 0, values.service !== undefined, values.server !== undefined].filter(Boolean).length;
  if (chosen !== 1 || positionals.length > 1) throw usageError('issue for one holder: <tenant/device>, --service <name> or --server <name> --host <name>');
  if (values.service !== undefined) return { kind: 'service', name: values.service };
  if (values.server !== undefined) {
    if (values.host.length === 0) throw usageError('--server needs at least one --host <name|ip> clients reach it by');
    return { kind: 'server', name: values.server, hosts: values.host };
  }
  return { kind: 'device', ...parseDeviceName(positionals[0] ?? '') };
}
