/** A count and its noun, the noun singular for exactly one: `1 chain`, `0 chains`, `2 chains`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
