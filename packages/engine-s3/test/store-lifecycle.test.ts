import { describe, expect, it } from 'vitest';
import { EmbeddedObjectStore } from '@arteria/engine-s3';
import { tempDir } from '@arteria/testing';

describe('embedded object store lifecycle', () => {
  it('starts once, closes once (concurrent closes share one outcome), refuses a second start with ILLEGAL_STATE, and closes with await using', async () => {
    const tmp = await tempDir('store-lifecycle');
    try {
      const store = new EmbeddedObjectStore();
      expect(store.state).toBe('new');
      await store.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: ['lifecycle'] });
      expect(store.state).toBe('running');
      expect((await fetch(`${store.endpoint}/lifecycle`)).status).toBeLessThan(500);
      await expect(store.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: ['lifecycle'] })).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      const closing = store.close();
      expect(store.close()).toBe(closing);
      await closing;
      expect(store.state).toBe('closed');
      await expect(fetch(`${store.endpoint}/lifecycle`)).rejects.toThrow();
      let scoped: EmbeddedObjectStore | undefined;
      {
        await using s = new EmbeddedObjectStore();
        await s.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: ['lifecycle'] });
        scoped = s;
      }
      expect(scoped.state).toBe('closed');
    } finally {
      await tmp.remove();
    }
  });

  it('a start that fails (the port is taken) stops its thread and leaves it closed', async () => {
    const tmp = await tempDir('store-lifecycle');
    try {
      await using first = new EmbeddedObjectStore();
      await first.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: ['lifecycle'] });
      const second = new EmbeddedObjectStore();
      await expect(second.start({ host: '127.0.0.1', port: Number(new URL(first.endpoint).port), directory: tmp.dir, buckets: ['lifecycle'] })).rejects.toMatchObject({ code: 'PORT_IN_USE' });
      expect(second.state).toBe('closed');
    } finally {
      await tmp.remove();
    }
  });
});
