// Hostile inputs through one of Arteria's input paths in a fresh process (run under
// --max-old-space-size), one after the other, so the peak RSS is this path's own. Prints a
// line { name, code, message, peakRssMb } per input: the typed error the sender would get
// (or "ok"), and the process's high-water mark once that input was handled.
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { once } from 'node:events';
import { basename, join } from 'node:path';
import { inspect } from 'node:util';
import { readHeaderFromFile } from '@arteria/dicom';
import { DeidentificationKey, DeidentificationProfile, deidentifyFile } from '@arteria/gateway';
import { AlgorithmRegistry, AlgorithmRunner, type RegisteredAlgorithm } from '@arteria/worker';
import { EmbeddedBroker } from '@arteria/engine-mqtt';
import { ArteriaError } from '@arteria/protocol';

export interface HostileChildArgs {
  path: 'gateway' | 'platform' | 'broker';
  /** The files, in order (gateway, platform); the first is usually a valid run, the baseline. */
  files?: string[];
  /** Scratch folder: the gateway's spool. */
  dir?: string;
  /** An algorithm folder the platform path runs (platform). */
  algorithmDir?: string;
  /** Bytes a PUBLISH header announces (broker). */
  announcedBytes?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as HostileChildArgs;

/** The gateway's path for a file handed to it: header, then de-identification into its spool. */
async function gateway(file: string, spool: string, entry: number): Promise<void> {
  await readHeaderFromFile(file);
  await deidentifyFile(file, join(spool, `entry-${entry}.dcm`), DeidentificationProfile.parse({}), new DeidentificationKey(Buffer.alloc(32, 1)));
}

/** The worker's path: the run streamed into the algorithm's isolated thread, decoded there. */
async function platform(file: string, runner: AlgorithmRunner, algorithm: RegisteredAlgorithm): Promise<void> {
  const { size } = await stat(file);
  await runner.run(algorithm, { chunks: createReadStream(file, { highWaterMark: 1 << 20 }), size });
}

/** A PUBLISH announcing announcedBytes to the embedded broker, body sent until it hangs up. */
async function broker(announcedBytes: number): Promise<void> {
  const server = new EmbeddedBroker();
  await server.start({
    host: '127.0.0.1',
    port: 0,
    secrets: { tenants: new Map([['demo', 'demo-tenant-secret-0123456789']]), platform: 'platform-secret-0123456789' },
    hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined, onSecurityEvent: () => undefined },
  });
  try {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    await once(socket, 'connect');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined); // the broker resets the connection: that is the outcome awaited
    const length: number[] = [];
    for (let n = announcedBytes; ; ) {
      const byte = n % 128;
      n = Math.floor(n / 128);
      length.push(n > 0 ? byte | 0x80 : byte);
      if (n === 0) break;
    }
    socket.write(Buffer.from([0x30, ...length]));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let written = 0;
    while (!socket.destroyed && written < announcedBytes) {
      if (!socket.write(chunk)) await Promise.race([new Promise<void>((resolve) => socket.once('drain', () => resolve())), closed]);
      written += chunk.length;
    }
    await closed;
    if (written >= announcedBytes) throw new Error(`the broker read all ${announcedBytes} bytes`);
    throw new ArteriaError('PAYLOAD_TOO_LARGE', `the broker hung up after ${written} of ${announcedBytes} bytes`);
  } finally {
    await server.close();
  }
}

const report = (name: string, err?: unknown): void => {
  const outcome = err === undefined ? { code: 'ok', message: '' } : err instanceof ArteriaError ? { code: err.code, message: err.message } : { code: 'UNTYPED', message: inspect(err) };
  // maxRSS: the process's high-water mark in KiB, all threads included.
  process.stdout.write(`${JSON.stringify({ name, ...outcome, peakRssMb: (process.resourceUsage().maxRSS * 1024) / 2 ** 20 })}\n`);
};

const handle = async (name: string, work: () => Promise<void>): Promise<void> => {
  try {
    await work();
    report(name);
  } catch (err) {
    report(name, err);
  }
};

if (args.path === 'broker') {
  await handle('broker', () => broker(args.announcedBytes ?? 0));
} else if (args.path === 'gateway') {
  const spool = join(args.dir ?? '', 'spool');
  await mkdir(spool, { recursive: true });
  for (const [i, file] of (args.files ?? []).entries()) await handle(basename(file), () => gateway(file, spool, i));
} else {
  const [algorithm] = (await AlgorithmRegistry.load([args.algorithmDir ?? ''])).list();
  if (algorithm === undefined) throw new Error(`no algorithm in ${args.algorithmDir}`);
  const runner = new AlgorithmRunner({});
  for (const file of args.files ?? []) await handle(basename(file), () => platform(file, runner, algorithm));
  await runner.close();
}
