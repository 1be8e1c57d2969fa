import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DYNSEC_PLUGIN, blockedFolderFor, issueCertificate, osUser, pkiPaths, writeMosquittoFiles, type MosquittoTlsFiles } from '@arteria/engine-mqtt';
import { usageError } from '@arteria/command';
import { ArteriaError, type DeviceAddress } from '@arteria/protocol';
import { int } from './args.js';
import { clusterSecrets } from './config/cluster-secrets.js';
import { loadConfig } from './config/load.js';

export const BROKER_HELP = `arteria broker mosquitto --out <dir> [options]   write mosquitto.conf, ACL, password file and
                             the dynamic security file (each device bound to its client id)
  --device <tenant/device>   a device account (repeatable)
  --devices-file <file>      one tenant/device per line
  --tls-ca <pem> --tls-cert <pem> --tls-key <pem>
                             the listener's TLS files (copied next to the config, mode 0600)
  --pki-dir <dir>            instead: issue the broker's certificate from Arteria's CA
                             (\`arteria pki init\`), valid for --tls-host names
  --tls-host <name|ip>       a name clients reach the broker by (repeatable; default: --host
                             unless 0.0.0.0, plus localhost and 127.0.0.1)
  --tls-crl <pem>            certificate revocation list (with --pki-dir: the CA's crl.pem)
  --client-certificates      devices log in with certificates (\`arteria pki issue\`): the
                             listener requires one, checks the CRL and names the session after
                             the certificate; devices get no password
  --service-port <n>         with --client-certificates: the services' TLS listener, with
                             passwords (default: --port + 1)
  --plaintext                no TLS: only with a loopback --host, for one machine
  --port <n>                 listener port (default 8883; 1883 with --plaintext)
  --host <addr>              (default 0.0.0.0)
  --persistence-dir <dir>    (default <out>/data; must belong to --user)
  --install-dir <dir>        where the files will be when Mosquitto runs, e.g. /mosquitto/config
                             in a container (default: --out)
  --dynsec-plugin <path>     Mosquitto's dynamic security plugin where Mosquitto runs (default
                             ${DEFAULT_DYNSEC_PLUGIN}; eclipse-mosquitto
                             image: /usr/lib/mosquitto_dynamic_security.so)
  --user <name>              OS user Mosquitto runs as (default mosquitto); run as root, this
                             command gives that user the password file (mode 0600)
  --config, --data-dir, --secrets-file   where the platform and tenant secrets come from`;

export async function brokerCommand(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind !== 'mosquitto') throw usageError(`unknown broker ${JSON.stringify(kind ?? '')}`);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      out: { type: 'string' },
      device: { type: 'string', multiple: true, default: [] },
      'devices-file': { type: 'string' },
      port: { type: 'string' },
      plaintext: { type: 'boolean', default: false },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-crl': { type: 'string' },
      'client-certificates': { type: 'boolean', default: false },
      'service-port': { type: 'string' },
      'pki-dir': { type: 'string' },
      'tls-host': { type: 'string', multiple: true, default: [] },
      host: { type: 'string', default: '0.0.0.0' },
      'persistence-dir': { type: 'string' },
      'install-dir': { type: 'string' },
      'dynsec-plugin': { type: 'string' },
      user: { type: 'string', default: 'mosquitto' },
      config: { type: 'string' },
      'data-dir': { type: 'string' },
      'secrets-file': { type: 'string' },
    },
  });
  if (values.out === undefined) throw usageError('--out is required');
  const configArgv = [
    ...(values.config === undefined ? [] : ['--config', values.config]),
    ...(values['data-dir'] === undefined ? [] : ['--data-dir', values['data-dir']]),
    ...(values['secrets-file'] === undefined ? [] : ['--secrets-file', values['secrets-file']]),
  ];
  const { config } = await loadConfig({ argv: configArgv, env: process.env });
  const secrets = await clusterSecrets(config);
  const names = [...values.device];
  if (values['devices-file'] !== undefined) names.push(...(await readFile(values['devices-file'], 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')));
  const devices: DeviceAddress[] = names.map((name) => {
    const [tenant = '', device = '', ...extra] = name.split('/');
    if (extra.length > 0 || tenant === '' || device === '') throw new ArteriaError('CONFIG_INVALID', `device ${JSON.stringify(name)}: write tenant/device`);
    return { tenant, device };
  });
  const out = path.resolve(values.out);
  const port = int(values.port ?? (values.plaintext ? '1883' : '8883'), '--port');
  const listener = await listenerTls(values, out);
  if (values['client-certificates'] && listener === undefined) throw usageError('--client-certificates needs TLS: --pki-dir or the --tls-* files');
  const tls =
    listener === undefined
      ? undefined
      : {
          ...listener,
          ...(values['tls-crl'] !== undefined && { crlFile: values['tls-crl'] }),
          ...(values['client-certificates'] && { clientCertificates: { servicePort: values['service-port'] === undefined ? port + 1 : int(values['service-port'], '--service-port') } }),
        };
  const files = await writeMosquittoFiles({
    dir: out,
    host: values.host,
    port,
    ...(tls === undefined ? {} : { tls }),
    plaintext: values.plaintext,
    ...(values['install-dir'] === undefined ? {} : { installDir: values['install-dir'] }),
    ...(values['dynsec-plugin'] === undefined ? {} : { dynsecPlugin: values['dynsec-plugin'] }),
    persistenceDir: values['install-dir'] === undefined ? path.resolve(values['persistence-dir'] ?? path.join(out, 'data')) : (values['persistence-dir'] ?? '/mosquitto/data'),
    user: values.user,
    platformSecret: secrets.platformSecret,
    tenants: new Map(Object.entries(secrets.tenants)),
    devices,
  });
  process.stdout.write(`wrote ${files.conf}, ${files.acl}, ${files.passwords}, ${files.dynsec} (${devices.length} devices); run: mosquitto -c ${files.conf}\n`);
  if (values['install-dir'] === undefined && process.getuid?.() === 0 && values.user !== 'root') {
    const blocked = await blockedFolderFor(await osUser(values.user), files.passwords);
    if (blocked !== undefined) process.stderr.write(`warning: user ${values.user} (whom Mosquitto runs as) cannot enter ${blocked}, so it cannot open ${files.passwords}: write the files under a folder it can reach (e.g. /etc/mosquitto/arteria) or pass --user\n`);
  }
  return 0;
}

/** The listener's TLS files: given as paths, or a broker certificate issued from Arteria's CA. */
async function listenerTls(values: { 'tls-ca'?: string; 'tls-cert'?: string; 'tls-key'?: string; 'pki-dir'?: string; 'tls-host': string[]; host: string }, out: string): Promise<MosquittoTlsFiles | undefined> {
  const given = [values['tls-ca'], values['tls-cert'], values['tls-key']];
  if (values['pki-dir'] !== undefined) {
    if (given.some((f) => f !== undefined)) throw usageError('give either --pki-dir or the --tls-* files, not both');
    const hosts = values['tls-host'].length > 0 ? values['tls-host'] : [...(values.host === '0.0.0.0' || values.host === '::' ? [] : [values.host]), 'localhost', '127.0.0.1'];
    const issued = await issueCertificate(values['pki-dir'], { kind: 'server', name: `broker-${path.basename(out)}`, hosts: [...new Set(hosts)] });
    const paths = pkiPaths(path.resolve(values['pki-dir']));
    return { caFile: paths.caCert, certFile: issued.cert, keyFile: issued.key, crlFile: paths.crl };
  }
  const [caFile, certFile, keyFile] = given;
  if (given.every((f) => f === undefined)) return undefined;
  if (caFile === undefined || certFile === undefined || keyFile === undefined) throw usageError('--tls-ca, --tls-cert and --tls-key go together');
  return { caFile, certFile, keyFile };
}
