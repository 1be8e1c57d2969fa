export { accepts, freePort, freePorts, isFree, waitForPort } from './ports.js';
