import { setFlagsFromString } from 'node:v8';

/** Between major collections, V8's old generation may grow by this share of what survived. */
export const PLATFORM_HEAP_GROWING_PERCENT = 100;

/**
 * Tunes V8's heap for a process that runs the platform: call it first thing, before the
 * platform starts its threads (it is process-wide, so `arteria up` and the roles call it,
 * not the library). V8 sets the old generation's next limit from how fast collections are
 * against how fast the program allocates there; a platform's threads (the store's, the
 * algorithms') hold small heaps and allocate there slowly, so V8 picked its smallest
 * growth (10 %) and ran a major collection every 80-150 ms while a big run's segments
 * arrived, each reclaiming about 1 MB: V8's helper threads took 1.2-2.2 of the 4.0-5.9
 * CPU-seconds of a 419 MB run. With 100 % they take about half that, the process's peak
 * memory does not grow, and small runs cost the same (performance.md).
 */
export function tunePlatformHeap(): void {
  setFlagsFromString(`--heap-growing-percent=${PLATFORM_HEAP_GROWING_PERCENT}`);
}
