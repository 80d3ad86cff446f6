// Minimal IPv4/IPv6 prefix arithmetic: enough to ask "is this route inside the pod network".

export interface Prefix {
  family: 4 | 6;
  addr: bigint;
  len: number;
  text: string;
}

function parseV4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    v = (v << 8n) | BigInt(Number(p));
  }
  return v;
}

function parseV6(s: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const expand = (h: string): string[] | null => {
    if (h === '') return [];
    const groups = h.split(':');
    const last = groups[groups.length - 1]!; // split gives at least one item
    if (last.includes('.')) {
      const v4 = parseV4(last);
      if (v4 === null) return null;
      groups.splice(groups.length - 1, 1, ((v4 >> 16n) & 0xffffn).toString(16), (v4 & 0xffffn).toString(16));
    }
    return groups;
  };
  const head = expand(halves[0]!);
  const tail = halves.length === 2 ? expand(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

/** Parses "10.244.0.0/16", "10.244.1.1/24", "fd00::/56" or a bare address (host prefix). */
export function parsePrefix(text: string): Prefix | null {
  const [a, l, extra] = text.trim().split('/');
  if (extra !== undefined || !a) return null;
  const v4 = parseV4(a);
  const family: 4 | 6 = v4 !== null ? 4 : 6;
  const addr = v4 ?? parseV6(a);
  if (addr === null) return null;
  const max = family === 4 ? 32 : 128;
  const len = l === undefined ? max : Number(l);
  if (!Number.isInteger(len) || len < 0 || len > max || (l !== undefined && !/^\d+$/.test(l))) return null;
  return { family, addr, len, text: text.trim() };
}

function mask(p: Prefix): bigint {
  const max = p.family === 4 ? 32n : 128n;
  return ((1n << BigInt(p.len)) - 1n) << (max - BigInt(p.len));
}

/** The network of a prefix, e.g. 10.244.1.1/24 -> 10.244.1.0/24. */
export function networkOf(p: Prefix): Prefix {
  const addr = p.addr & mask(p);
  return { ...p, addr, text: `${formatAddr(p.family, addr)}/${p.len}` };
}

export function formatAddr(family: 4 | 6, addr: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => ((addr >> s) & 0xffn).toString()).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((addr >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as iproute2 and iptables print them.
  let best = -1,
    bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** True when `inner` lies entirely inside `outer`. */
export function contains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || inner.len < outer.len) return false;
  return (inner.addr & mask(outer)) === (outer.addr & mask(outer));
}

/** Route destinations as iproute2 prints them: "default", "10.0.0.0/24", or a bare host address. */
export function routeDst(dst: string, family: 4 | 6): Prefix | null {
  if (dst === 'default') return parsePrefix(family === 4 ? '0.0.0.0/0' : '::/0');
  return parsePrefix(dst);
}
