/** The one worker pool: a few calls in flight at once, so a backend is never asked for hundreds together. */

/**
 * Run `fn` over `items` with at most `limit` calls in flight, results in input order. A failure
 * rejects the whole run (calls already in flight still finish); items not started by then still run.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
