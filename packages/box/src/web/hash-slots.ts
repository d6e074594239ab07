/**
 * A counting semaphore with a bounded queue, for the admin password's scrypt hashes.
 *
 * Node runs scrypt, file reads and writes and getaddrinfo on one pool of threads (libuv's, 4 by default).
 * Unbounded, a burst of password checks takes every thread and the box's own file work (config.json on
 * every homepage, https.pem, the logs) waits behind seconds of hashing: the homepage froze for 6 s under
 * 300 parallel guesses. With slots, at most `concurrent` hashes hold threads; a request that would wait
 * behind more than `queue` others is refused at once (429) instead of piling up.
 */
export class HashSlots {
  readonly #concurrent: number;
  readonly #queue: number;
  #running = 0;
  #waiting: Array<() => void> = [];

  constructor(concurrent: number, queue: number) {
    if (!(Number.isInteger(concurrent) && concurrent >= 1 && Number.isInteger(queue) && queue >= 0)) {
      throw new Error(`hash slots need at least one concurrent slot and a queue of zero or more, not ${concurrent} and ${queue}`);
    }
    this.#concurrent = concurrent;
    this.#queue = queue;
  }

  /** Tasks holding a slot now. */
  get running(): number {
    return this.#running;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs task in a slot, or returns null at once when the slots are taken and the queue is full. */
  tryRun<T>(task: () => Promise<T>): Promise<T> | null {
    if (this.#running >= this.#concurrent && this.#waiting.length >= this.#queue) return null;
    return this.run(task);
  }

  /** Runs task in a slot, waiting as long as it takes (for work that must not be refused). */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#running < this.#concurrent) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** The slot passes straight to the next waiting task, if any, so a newcomer cannot jump the queue. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running--;
  }
}
