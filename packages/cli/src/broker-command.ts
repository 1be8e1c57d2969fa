import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DYNSEC_PLUGIN, blockedFolderFor, osUser, writeMosquittoFiles } from '@arteria/platform';
import { usageError } from '@arteria/command';
import { ArteriaError, type DeviceAddress } from '@arteria/protocol';
import { int } from './args.js';
import { clusterSecrets } from './config/cluster-secrets.js';
import { loadConfig } from './config/load.js';

export const BROKER_HELP = `arteria broker mosquitto --out <dir> [options]   write mosquitto.conf, ACL, password file and
                             the dynamic security file (each device bound to its client id)
  --device <tenant/device>   a device account (repeatable)
  --devices-file <file>      one tenant/device per line
  --port <n>                 listener port (default 1883)   --host <addr> (default 0.0.0.0)
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
      port: { type: 'string', default: '1883' },
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
  const files = await writeMosquittoFiles({
    dir: out,
    host: values.host,
    port: int(values.port, '--port'),
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
