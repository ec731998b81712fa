// How a file got into a closure: its importers, nearest first, back to the declared dep.

/** `b.ts ← a.ts`: the importers of `path`, nearest first, back to the declared dep (which has none). */
export function importChain(importedBy: ReadonlyMap<string, string>, path: string): string[] {
  const chain: string[] = [];
  const seen = new Set([path]);
  for (let at = importedBy.get(path); at !== undefined && !seen.has(at); at = importedBy.get(at)) {
    chain.push(at);
    seen.add(at);
  }
  return chain;
}
