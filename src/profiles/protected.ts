// Name spaces of iptables chains and ipsets that belong to Kubernetes itself, not to a CNI: kube-proxy
// and kubelet write KUBE-*, the CNI plugins' portmap and bridge write CNI-*. A CNI that lives inside one
// (kube-router's KUBE-ROUTER-*, KUBE-NWPLCY-*, KUBE-SRC-*) gets exactly the sub-prefixes its profile
// names, and even those never take a name kube-proxy or kubelet use: that is checked here, by name,
// not left to which prefixes happen to be listed.

export interface ProtectedSpace {
  /** The name space: a profile's prefix inside it must be strictly longer. */
  prefix: string;
  /** Who writes it, for messages. */
  owner: string;
  /** Exact names that stay whatever a profile's sub-prefix says. */
  names: string[];
  /** Prefixes of names that stay whatever a profile's sub-prefix says. */
  prefixes: string[];
}

/**
 * kube-proxy's iptables and nftables-era chains and IPVS ipsets (kubernetes pkg/proxy/iptables,
 * pkg/proxy/ipvs: KUBE-SERVICES, KUBE-SVC-, KUBE-SEP-, KUBE-NODEPORTS, KUBE-MARK-MASQ ...) and
 * kubelet's (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-MARK-DROP).
 */
export const PROTECTED_SPACES: ProtectedSpace[] = [
  {
    prefix: 'KUBE-',
    owner: 'kube-proxy and kubelet',
    names: [
      'KUBE-SERVICES',
      'KUBE-EXTERNAL-SERVICES',
      'KUBE-NODEPORTS',
      'KUBE-POSTROUTING',
      'KUBE-FORWARD',
      'KUBE-FIREWALL',
      'KUBE-PROXY-FIREWALL',
      'KUBE-KUBELET-CANARY',
      'KUBE-PROXY-CANARY',
      'KUBE-LOAD-BALANCER',
      'KUBE-LOOP-BACK',
      'KUBE-CLUSTER-IP',
      'KUBE-EXTERNAL-IP',
      'KUBE-EXTERNAL-IP-LOCAL',
      'KUBE-HEALTH-CHECK-NODE-PORT',
      'KUBE-IPVS-IPS',
    ],
    prefixes: [
      'KUBE-SVC-',
      'KUBE-SVL-',
      'KUBE-SEP-',
      'KUBE-EXT-',
      'KUBE-FW-',
      'KUBE-XLB-',
      'KUBE-MARK-',
      'KUBE-NODE-PORT',
      'KUBE-LOAD-BALANCER-',
      'KUBE-IPVS-',
    ],
  },
  {
    prefix: 'CNI-',
    owner: 'the CNI plugins (portmap, bridge)',
    names: ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-SETMARK', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SNAT', 'CNI-FORWARD', 'CNI-ADMIN'],
    prefixes: [],
  },
];

/** Why a profile's chain or ipset prefix is not allowed, or null: a bare name space or a prefix of one. */
export function prefixProblem(p: string): string | null {
  if (!p) return 'must not be empty (it would match every name)';
  const space = PROTECTED_SPACES.find((s) => s.prefix.startsWith(p) || s.prefix.toLowerCase().startsWith(p.toLowerCase()));
  if (space && p.length <= space.prefix.length)
    return `${JSON.stringify(p)} would take ${space.owner}'s ${space.prefix}* names: give an exact sub-prefix (e.g. ${space.prefix}ROUTER-)`;
  return null;
}

/** Whether a chain or ipset name belongs to Kubernetes itself (kube-proxy, kubelet, the portmap plugin), whatever prefix matches it. */
export function protectedName(name: string): ProtectedSpace | null {
  for (const s of PROTECTED_SPACES) {
    if (!name.startsWith(s.prefix)) continue;
    if (s.names.includes(name) || s.prefixes.some((p) => name.startsWith(p))) return s;
  }
  return null;
}
