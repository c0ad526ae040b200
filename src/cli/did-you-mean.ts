/** Suggestions for a misspelt flag or config key. */

/** The candidate one or two edits away from `typed` (the nearest), if any. */
export function nearest(typed: string, candidates: readonly string[]): string | undefined {
  return candidates
    .map((c) => ({ c, d: editDistance(typed, c) }))
    .filter(({ d }) => d <= 2)
    .sort((a, b) => a.d - b.d)[0]?.c;
}

/** Levenshtein distance (insertions, deletions, substitutions; a swap of neighbours counts as 2). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
