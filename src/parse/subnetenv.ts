// /run/flannel/subnet.env: KEY=VALUE lines written by flanneld (FLANNEL_NETWORK may be a comma list).
// Each value is a CIDR as Go's net.ParseCIDR takes it (a bare address is not one).
// Read the way flanneld reads it back (pkg/subnet ReadCIDRsFromSubnetFile: godotenv): comments,
// an `export ` prefix, single or double quotes, CRLF line ends, `KEY: value`. A line none of these
// explain, an unterminated quote, or a network key that is not a list of CIDRs makes the file
// unreadable as a whole (a ParseError), as it does for flanneld; the caller says what that costs.
import { parsePrefix } from '../util/cidr.js';
import { ParseError } from './errors.js';

export interface SubnetEnv {
  networks: string[];
  subnet?: string;
  ipv6Networks: string[];
  ipv6Subnet?: string;
  mtu?: number;
  ipMasq?: boolean;
  raw: Record<string, string>;
}

const LINE = /^(?:export[ \t]+)?([A-Za-z0-9_.-]+)[ \t]*[=:][ \t]*(.*)$/;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', $: '$' };

function value(rest: string, n: number): string {
  const q = rest[0];
  if (q === "'" || q === '"') {
    let out = '';
    let i = 1;
    for (; i < rest.length && rest[i] !== q; i++) {
      if (q === '"' && rest[i] === '\\' && i + 1 < rest.length) out += ESCAPES[rest[++i]!] ?? `\\${rest[i]}`;
      else out += rest[i]!;
    }
    if (i >= rest.length) throw new ParseError(`line ${n}: unterminated quoted value`);
    const after = rest.slice(i + 1).trim();
    if (after !== '' && !after.startsWith('#')) throw new ParseError(`line ${n}: text after the quoted value: ${after}`);
    return out;
  }
  // An unquoted value ends at an inline comment (whitespace, then #).
  return rest.replace(/[ \t]#.*$/, '').trim();
}

function cidrs(key: string, v: string | undefined): string[] {
  if (!v) return [];
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const c of list) if (!c.includes('/') || !parsePrefix(c)) throw new ParseError(`${key}: not a CIDR: ${c}`);
  return list;
}

export function parseSubnetEnv(text: string): SubnetEnv {
  const raw: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.replace(/\r$/, '').trim();
    if (!t || t.startsWith('#')) continue;
    const m = LINE.exec(t);
    if (!m) throw new ParseError(`line ${i + 1}: not KEY=VALUE: ${t}`);
    raw[m[1]!] = value(m[2]!, i + 1);
  }
  const one = (key: string) => {
    const list = cidrs(key, raw[key]);
    if (list.length > 1) throw new ParseError(`${key}: more than one CIDR: ${raw[key]}`);
    return list[0];
  };
  const mtu = raw.FLANNEL_MTU ? Number(raw.FLANNEL_MTU) : undefined;
  return {
    networks: cidrs('FLANNEL_NETWORK', raw.FLANNEL_NETWORK),
    subnet: one('FLANNEL_SUBNET'),
    ipv6Networks: cidrs('FLANNEL_IPV6_NETWORK', raw.FLANNEL_IPV6_NETWORK),
    ipv6Subnet: one('FLANNEL_IPV6_SUBNET'),
    mtu: mtu !== undefined && Number.isInteger(mtu) && mtu > 0 ? mtu : undefined,
    ipMasq: raw.FLANNEL_IPMASQ ? raw.FLANNEL_IPMASQ === 'true' : undefined,
    raw,
  };
}
