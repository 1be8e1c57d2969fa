// The platform under test runs in its own process, as in production, so the load
// generator's work does not share its event loop. argv[2]: JSON options.
import { EmbeddedPlatform, tunePlatformHeap } from '@arteria/platform';
import { threadCpuMs } from './thread-cpu.js';

// As `arteria up` runs it.
tunePlatformHeap();
const platform = await EmbeddedPlatform.start(JSON.parse(process.argv[2] ?? '{}'), (error) => process.stderr.write(`platform: ${error.message}\n`));
process.stdout.write(`${JSON.stringify({ mqttUrl: platform.mqttUrl, s3Endpoint: platform.s3Endpoint, storeCredentials: platform.storeCredentials, httpUrl: platform.http.url })}\n`);
process.once('SIGTERM', () => {
  platform.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
});
// Asked over IPC for its peak RSS (the platform's memory figure of a benchmark row).
process.on('message', (message: unknown) => {
  if (message === 'peak-rss') process.send?.({ peakRssMb: process.resourceUsage().maxRSS / 1024 });
  // CPU time of the whole process (every thread), for CPU per request: steadier than latency on a busy machine.
  if (message === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMs: (user + system) / 1000, mainThreadCpuMs: threadCpuMs() }); // answered on the main thread: its CPU alone
  }
});
