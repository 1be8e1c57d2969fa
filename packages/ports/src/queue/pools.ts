/**
 * Worker pools. Each pool has a queue of its own (a pool-qualified name on every engine)
 * and workers that lease only from it: `cpu` takes every algorithm, `gpu` the ones whose
 * manifest asks for a GPU (`resources.gpu`) where the deployment routes them there. The
 * autoscaler sizes each pool from its own queue, so GPU nodes can rest at zero.
 */
export const WORKER_POOLS = ['cpu', 'gpu'] as const;
export type WorkerPoolName = (typeof WORKER_POOLS)[number];

