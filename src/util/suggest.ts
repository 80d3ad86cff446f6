// "Did you mean": the known name closest to a mistyped one, when it is close enough to be a typo.

/** Edit distance counting a swap of two neighbours as one edit (`purne` is one edit from `prune`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i ? (j ? 0 : i) : j)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i]![j] = v; // rows are allocated above
    }
  }
  return at(a.length, b.length);
}

/** The closest known name within a typo's reach (a third of the name, at least one edit), or undefined. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const n = name.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = k.toLowerCase().startsWith(n) && n.length >= 3 ? 0.5 : editDistance(n, k.toLowerCase());
    if (!best || d < best.d) best = { name: k, d };
  }
  return best && best.d <= Math.max(1, Math.floor(n.length / 3)) ? best.name : undefined;
}
