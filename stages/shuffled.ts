// The seeded shuffle of the stages (split's validation picks, train's epoch order): Fisher-Yates driven by a
// seedrandom generator, so the same seed always gives the same order.

/** A shuffled copy of `items`. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
