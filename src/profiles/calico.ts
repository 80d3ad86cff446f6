// Calico, checked against projectcalico/calico: felix/rules/rule_defs.go (cali- chains, cali: comments,
// cali40/cali60 ipsets), the nftables dataplane (table ip/ip6 calico), felix's device names
// (vxlan.calico, vxlan-v6.calico, wireguard.cali, wg-v6.cali, tunl0 of the ipip module), the CNI
// plugin's veth names (cali + 11 hex) and its routes (proto bird from BIRD, proto 80 from felix).
import type { ProfileInput } from './schema.js';

const CALICO_PATHS = '/(etc|run|var/run)/calico/';

export const calico: ProfileInput = {
  name: 'calico',
  description: 'Calico (BGP/IPIP, VXLAN and WireGuard; iptables and nftables dataplanes)',
  config: { pluginTypes: ['calico'], ipamTypes: ['calico-ipam'], extraFiles: ['calico-kubeconfig'] },
  defaultNetworks: ['k8s-pod-network'],
  state: {
    // /var/log/calico holds the CNI plugin's log (cni/) and, on some installs, felix's: all Calico's.
    paths: ['/var/lib/calico', '/var/run/calico', '/run/calico', '/var/log/calico'],
    networkPaths: ['/var/lib/cni/networks/{network}'],
  },
  interfaces: {
    names: ['vxlan.calico', 'vxlan-v6.calico', 'wireguard.cali', 'wg-v6.cali'],
    patterns: ['^cali[0-9a-f]{11}$'],
    bridgePorts: false,
    kernelOwned: ['tunl0'],
  },
  // BIRD's routes (proto bird: blackholes for the node's blocks, remote blocks via tunl0 or a peer);
  // felix's VXLAN manager tags its blackholes and same-subnet routes with proto 80 (VXLANDefaultProto)
  // and routes via vxlan.calico go with the device. Block sizes: IPPool blockSize, 20-32 and 116-128.
  // A site's own BIRD writes proto bird too: its unicast routes are Calico's only in Calico's shapes.
  routes: {
    podNetworkRoutes: false,
    protocols: ['bird', '80'],
    sharedProtocols: ['bird'],
    prefixLens: { v4: [20, 32], v6: [116, 128] },
  },
  firewall: {
    chainPrefixes: ['cali-'],
    commentPrefixes: ['cali:'],
    ipsetPrefixes: ['cali40', 'cali60'],
  },
  nftables: [
    { family: 'ip', name: 'calico' },
    { family: 'ip6', name: 'calico' },
  ],
  modules: ['ipip'],
  // calico/node runs `calico-node -felix`, `-confd`, `-allocate-tunnel-addrs` ... (older images:
  // calico-felix and confd -confdir=/etc/calico/confd), and BIRD as `bird -R -s
  // /var/run/calico/bird.ctl -d -c /etc/calico/confd/config/bird.cfg` (bird6 likewise). bird and
  // confd count only with Calico's paths on their command line: a site may run its own BIRD.
  agents: {
    processes: [
      { name: 'calico-node' },
      { name: 'calico-felix' },
      { name: 'bird', cmdline: CALICO_PATHS },
      { name: 'bird6', cmdline: CALICO_PATHS },
      { name: 'confd', cmdline: CALICO_PATHS },
    ],
    stop: 'manifest install: kubectl -n kube-system delete daemonset calico-node; operator install: kubectl delete installation default (the operator recreates the DaemonSet otherwise)',
  },
  overlays: [
    { pattern: '^vxlan\\.calico$', kind: 'VXLAN', overhead: 50 },
    { pattern: '^vxlan-v6\\.calico$', kind: 'VXLAN over IPv6', overhead: 70 },
    { pattern: '^wireguard\\.cali$', kind: 'WireGuard', overhead: 60 },
    { pattern: '^wg-v6\\.cali$', kind: 'WireGuard over IPv6', overhead: 80 },
    { pattern: '^tunl0$', kind: 'IPIP', overhead: 20 },
  ],
  mtuSource: "Calico's MTU setting (veth_mtu / FELIX_VXLANMTU)",
  networkPolicy: { enforces: 'yes' },
  leftoverWhy: {
    interfaces:
      'cali* veths and vxlan.calico keep routes to old Calico pods and IPAM blocks, and an addressed tunl0 keeps taking IPIP traffic: ' +
      "traffic to those ranges goes where no pod is, and the next CNI's devices conflict with them.",
    routes:
      'Blackhole routes for old Calico IPAM blocks swallow traffic to those addresses, and routes via other nodes send pod-range traffic to nodes that no longer serve it; ' +
      'the next CNI may hand out the same ranges.',
    firewall:
      'cali-* chains stay hooked into INPUT, FORWARD, OUTPUT and the nat and raw tables: they keep marking, accepting or dropping traffic by Calico policy nobody maintains any more.',
  },
};
