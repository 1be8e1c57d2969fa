/**
 * Thread side of a streamed task: the chunks the host sends, as an async iterable. Taking a
 * chunk off the queue returns its bytes to the host as credit, so the host never has more
 * than its window in flight and the thread's memory stays bounded.
 */
export class ChunkChannel implements AsyncIterable<Uint8Array> {
  readonly #queue: Uint8Array[] = [];
  #ended = false;
  #abandoned = false;
  #wake: (() => void) | undefined;
  readonly #credit: (bytes: number) => void;

  constructor(credit: (bytes: number) => void) {
    this.#credit = credit;
  }

  push(bytes: ArrayBuffer): void {
    if (this.#ended) return;
    this.#queue.push(new Uint8Array(bytes));
    this.#signal();
  }

  end(abandoned: boolean): void {
    this.#ended = true;
    this.#abandoned = abandoned;
    this.#signal();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.#abandoned) throw new Error('the host abandoned the input');
      const next = this.#queue.shift();
      if (next !== undefined) {
        this.#credit(next.length);
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
