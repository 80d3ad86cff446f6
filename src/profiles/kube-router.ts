// kube-router, checked against cloudnativelabs/kube-router (7c2c2779): daemonset/*.yaml (the
// conflist: generic `bridge` plugin, network mynet, bridge kube-bridge, host-local IPAM, written to
// 10-kuberouter.conflist; /var/lib/kube-router holds its kubeconfig), pkg/controllers/proxy/
// network_services_controller.go (kube-dummy-if, kube-tunnel-if/-v6, kube-bridge; tables 78
// kube-router-dsr and 79 external_ip with rules at 32764 and 32765; KUBE-ROUTER-SERVICES,
// KUBE-ROUTER-HAIRPIN; ipsets kube-router-local-ips, kube-router-svip(-prt)), pkg/routes/pbr.go
// (table 77 kube-router, rules `from <pod CIDR> lookup 77`), pkg/utils/linux_routing.go (appends
// `<id> <name>` to iproute2's rt_tables), pkg/routes/linux_routes.go (its routes carry protocol 0x11),
// pkg/tunnels/linux_tunnels.go (tun- + 11 hex of sha256 of the peer IP since v2.0), pkg/controllers/
// netpol (KUBE-ROUTER-INPUT/FORWARD/OUTPUT, KUBE-NWPLCY-*, KUBE-POD-FW-*, ipsets KUBE-SRC-*, KUBE-DST-*,
// kube-router-local-pods; nftables mode: tables ip kube-router-filter-ipv4, ip6 kube-router-filter-ipv6),
// pkg/controllers/routing (pod egress MASQUERADE on the kube-router-pod-subnets set, FORWARD accepts
// commented "allow ... traffic ... pods", ipsets kube-router-pod-subnets, kube-router-node-ips).
import type { ProfileInput } from './schema.js';

// The pod egress masquerade (pkg/controllers/routing/pod_egress.go), as iptables-save prints it, with
// and without --random-fully, and the older shape without the node-ips match it still cleans up.
const egress = (set: string, nodes: string) => [
  `-m set --match-set ${set} src -m set ! --match-set ${set} dst -m set ! --match-set ${nodes} dst -j MASQUERADE`,
  `-m set --match-set ${set} src -m set ! --match-set ${set} dst -m set ! --match-set ${nodes} dst -j MASQUERADE --random-fully`,
  `-m set --match-set ${set} src -m set ! --match-set ${set} dst -j MASQUERADE`,
];

export const kubeRouter: ProfileInput = {
  name: 'kube-router',
  description: 'kube-router (BGP pod routing over kube-bridge, IPIP/FoU tunnels, network policy, IPVS service proxy)',
  config: {
    pluginTypes: ['bridge'],
    // The bridge plugin is podman's and many a site's too: only with kube-router's bridge, which it
    // creates itself under that fixed name, and the network names its manifests use (mynet; kubespray's
    // template: kubernetes). Kilo's config also names kube-bridge, as network "kilo": not kube-router's.
    pluginQualifiers: { bridge: { networks: ['mynet', 'kubernetes'], bridges: ['kube-bridge'] } },
  },
  defaultNetworks: ['mynet'],
  state: {
    paths: ['/var/lib/kube-router'],
    networkPaths: ['/var/lib/cni/networks/{network}'],
  },
  interfaces: {
    names: ['kube-bridge', 'kube-dummy-if', 'kube-tunnel-if', 'kube-tunnel-v6'],
    // Overlay tunnels to peers in other subnets. kube-router 1.x named them tun-<IP digits> (tun + 12
    // digits when longer): not matched, a site's tun-1234 could be anything; see README.
    patterns: ['^tun-[0-9a-f]{11}$'],
    bridgePorts: true,
  },
  routes: {
    podNetworkRoutes: false,
    // RTPROT 17 (the kernel's RTPROT_MROUTED; kube-router calls it ZebraOriginator): routes to other
    // nodes' pod CIDRs it learnt over BGP. mrouted writes multicast forwarding entries, not unicast
    // routes with this protocol, so a unicast proto 17 route via the uplink is kube-router's.
    protocols: ['17'],
    rules: [{ table: 77 }, { table: 78, priority: 32764 }, { table: 79, priority: 32765 }],
    tables: [77, 78, 79],
    rtTables: [
      { table: 77, name: 'kube-router' },
      { table: 78, name: 'kube-router-dsr' },
      { table: 79, name: 'external_ip' },
    ],
  },
  firewall: {
    chainPrefixes: ['KUBE-ROUTER-', 'KUBE-NWPLCY-', 'KUBE-POD-FW-'],
    comments: [
      'allow outbound traffic from pods',
      'allow inbound traffic to pods',
      'allow outbound node port traffic on node interface with which node ip is associated',
    ],
    // The jumps from INPUT/FORWARD/OUTPUT: "kube-router netpol - <hash of the rule>".
    commentPrefixes: ['kube-router netpol'],
    legacyRules: [
      ...egress('kube-router-pod-subnets', 'kube-router-node-ips').map((spec) => ({
        family: 4 as const,
        table: 'nat',
        chain: 'POSTROUTING',
        spec,
      })),
      ...egress('inet6:kube-router-pod-subnets', 'inet6:kube-router-node-ips').map((spec) => ({
        family: 6 as const,
        table: 'nat',
        chain: 'POSTROUTING',
        spec,
      })),
    ],
    // IPv6 sets carry ipset's inet6: prefix (pkg/utils/ipset.go).
    ipsetPrefixes: ['KUBE-SRC-', 'KUBE-DST-', 'kube-router-', 'inet6:KUBE-SRC-', 'inet6:KUBE-DST-', 'inet6:kube-router-'],
  },
  nftables: [
    { family: 'ip', name: 'kube-router-filter-ipv4' },
    { family: 'ip6', name: 'kube-router-filter-ipv6' },
  ],
  modules: [],
  // Its DaemonSet kube-router (namespace kube-system) runs /usr/local/bin/kube-router.
  agents: {
    processes: [{ name: 'kube-router' }],
    stop: 'kubectl -n kube-system delete daemonset kube-router',
  },
  // pkg/routes/pbr.go: `from <pod CIDR> lookup 77`, so that traffic from the pods leaves through the
  // tunnels; network_services_controller.go: DSR services and external IPs through 78 and 79 (rules at 32764 and 32765).
  leftoverWhy: {
    policyRouting:
      "They are looked up before the main table: traffic from kube-router's pod CIDR still goes to table 77 (its routes into the tunnels) and traffic of its DSR services and external IPs to tables 78 and 79, " +
      'so pods of the next CNI on the same pod CIDR are routed by what kube-router left there.',
  },
};
