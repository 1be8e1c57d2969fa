import type { ResultV1 } from '@arteria/protocol';
import type { ResultPublisher } from '@arteria/ports';

/** The results port, in process: keeps what was published for the test to read. */
export class KeptResults implements ResultPublisher {
  readonly published: ResultV1[] = [];
  publish(result: ResultV1): Promise<void> {
    this.published.push(result);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
