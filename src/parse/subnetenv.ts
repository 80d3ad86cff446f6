// /run/flannel/subnet.env: KEY=VALUE lines written by flanneld (FLANNEL_NETWORK may be a comma list).

export interface SubnetEnv {
  networks: string[];
  subnet?: string;
  ipv6Networks: string[];
  ipv6Subnet?: string;
  mtu?: number;
  ipMasq?: boolean;
  raw: Record<string, string>;
}

export function parseSubnetEnv(text: string): SubnetEnv {
  const raw: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`not KEY=VALUE: ${t}`);
    raw[t.slice(0, eq).trim()] = t
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
  }
  const list = (v?: string) =>
    v
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  return {
    networks: list(raw.FLANNEL_NETWORK),
    subnet: raw.FLANNEL_SUBNET || undefined,
    ipv6Networks: list(raw.FLANNEL_IPV6_NETWORK),
    ipv6Subnet: raw.FLANNEL_IPV6_SUBNET || undefined,
    mtu: raw.FLANNEL_MTU ? Number(raw.FLANNEL_MTU) : undefined,
    ipMasq: raw.FLANNEL_IPMASQ ? raw.FLANNEL_IPMASQ === 'true' : undefined,
    raw,
  };
}
