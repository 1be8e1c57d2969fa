// The fleet's rendering thread: synthesizing a run takes tens to hundreds of ms, which
// must not stall the event loop that the gateways (and, in `arteria up`, the platform) share.
import { parentPort } from 'node:worker_threads';
import { renderRun, type RunRecipe } from './run-recipe.js';

const port = parentPort;
if (port === null) throw new Error('run-factory-thread must run in a worker thread');
port.on('message', (message: { id: number; recipe: RunRecipe }) => {
  try {
    const bytes = renderRun(message.recipe);
    const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    port.postMessage({ id: message.id, bytes: buffer }, [buffer.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) });
  }
});
