/**
 * Writes to one secret name through this daemon run one at a time, in arrival order. Without it,
 * N concurrent POSTs to one name all read the same latest serial and race for the next one: each
 * lost race is a failed conditional put, a re-read and a retry, O(N²) backend calls in all.
 * Queued, each write reads the latest once and claims the next serial at the first attempt. The
 * daemon queues only that claim (SecretsService.create's `serialize`): the KMS data key is made
 * before, outside the queue, so the queue's turn per write is two DynamoDB calls.
 * Other names are not held up, and the conditional put still protects against writers outside
 * this daemon (the CLI, other tasks).
 */
export class PerNameQueue {
  /** name → the promise of the last write queued for it; removed when the queue empties. */
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name);
    // A failed write must not fail the ones queued behind it: wait for settlement, not success.
    const result = previous === undefined ? task() : previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(name, tail);
    void tail.then(() => {
      if (this.tails.get(name) === tail) this.tails.delete(name);
    });
    return result;
  }

  /** Names with writes queued or running (for tests). */
  get busyNames(): number {
    return this.tails.size;
  }
}
