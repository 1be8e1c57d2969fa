// Loaded before each test file (vitest.config.ts `setupFiles`): the file fails when it leaves
// a signal or error listener on the process it shares with other files.
import { afterAll, beforeAll } from 'vitest';
import { watchProcessListeners } from './listener-guard.js';

let check: (() => void) | undefined;
beforeAll(() => {
  check = watchProcessListeners();
});
afterAll(() => check?.());
