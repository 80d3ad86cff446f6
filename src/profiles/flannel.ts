// Flannel, checked against flannel-io/flannel (pkg/trafficmngr/iptables, pkg/trafficmngr/nftables,
// pkg/backend/*), flannel-io/cni-plugin and containernetworking/plugins. See fixtures/flannel/SOURCES.md.
import type { ProfileInput } from './schema.js';

export const flannel: ProfileInput = {
  name: 'flannel',
  description: 'Flannel (vxlan, host-gw, wireguard, udp, ipip backends) with the bridge and portmap plugins',
  config: { pluginTypes: ['flannel'] },
  defaultNetworks: ['cbr0'],
  state: {
    paths: ['/run/flannel', '/var/lib/cni/flannel'],
    networkPaths: ['/var/lib/cni/networks/{network}'],
    subnetEnv: '/run/flannel/subnet.env',
  },
  interfaces: {
    names: ['cni0', 'flannel.1', 'flannel-v6.1', 'flannel-wg', 'flannel-wg-v6', 'flannel0', 'flannel.ipip'],
    // flannel.<VNI> and flannel-v6.<VNI> when a non-default VNI is configured (rke2 uses 4096).
    patterns: ['^flannel\\.\\d+$', '^flannel-v6\\.\\d+$'],
    bridgePorts: true,
  },
  // host-gw (pkg/backend/hostgw): netlink.Route{Dst: lease, Gw: node IP, LinkIndex: uplink}, which
  // vishvananda/netlink sends as proto boot in the main table; lease defaults from pkg/subnet/config.go.
  routes: { podNetworkRoutes: true, hostGwProtocols: ['boot'], defaultLeaseLen: { v4: 24, v6: 64 } },
  firewall: {
    chainPrefixes: ['FLANNEL-'],
    // "flannel masq" is a typo some v0.17-era releases shipped (k3s-io/k3s#5034).
    comments: ['flanneld masq', 'flanneld forward', 'flannel masq'],
    // Flannel before the comments (k3s-io/k3s#5001, flannel PR #1525) wrote these into the built-in chains.
    legacyRules: [
      { family: 4, table: 'nat', chain: 'POSTROUTING', spec: '-s {network} -d {network} -j RETURN' },
      { family: 4, table: 'nat', chain: 'POSTROUTING', spec: '-s {network} ! -d 224.0.0.0/4 -j MASQUERADE' },
      { family: 4, table: 'nat', chain: 'POSTROUTING', spec: '-s {network} ! -d 224.0.0.0/4 -j MASQUERADE --random-fully' },
      { family: 4, table: 'nat', chain: 'POSTROUTING', spec: '! -s {network} -d {subnet} -j RETURN' },
      { family: 4, table: 'nat', chain: 'POSTROUTING', spec: '! -s {network} -d {network} -j MASQUERADE' },
      { family: 4, table: 'nat', chain: 'POSTROUTING', spec: '! -s {network} -d {network} -j MASQUERADE --random-fully' },
      { family: 4, table: 'filter', chain: 'FORWARD', spec: '-s {network} -j ACCEPT' },
      { family: 4, table: 'filter', chain: 'FORWARD', spec: '-d {network} -j ACCEPT' },
      { family: 6, table: 'nat', chain: 'POSTROUTING', spec: '-s {network} -d {network} -j RETURN' },
      { family: 6, table: 'nat', chain: 'POSTROUTING', spec: '-s {network} ! -d ff00::/8 -j MASQUERADE' },
      { family: 6, table: 'nat', chain: 'POSTROUTING', spec: '-s {network} ! -d ff00::/8 -j MASQUERADE --random-fully' },
      { family: 6, table: 'nat', chain: 'POSTROUTING', spec: '! -s {network} -d {subnet} -j RETURN' },
      { family: 6, table: 'nat', chain: 'POSTROUTING', spec: '! -s {network} -d {network} -j MASQUERADE' },
      { family: 6, table: 'nat', chain: 'POSTROUTING', spec: '! -s {network} -d {network} -j MASQUERADE --random-fully' },
      { family: 6, table: 'filter', chain: 'FORWARD', spec: '-s {network} -j ACCEPT' },
      { family: 6, table: 'filter', chain: 'FORWARD', spec: '-d {network} -j ACCEPT' },
    ],
  },
  nftables: [
    { family: 'ip', name: 'flannel-ipv4' },
    { family: 'ip6', name: 'flannel-ipv6' },
  ],
  modules: [],
  // kube-flannel.yml runs /opt/bin/flanneld in the DaemonSet kube-flannel-ds of namespace kube-flannel
  // (kube-system in releases before v0.20).
  agents: {
    processes: [{ name: 'flanneld' }],
    stop: 'kubectl -n kube-flannel delete daemonset kube-flannel-ds (older manifests: -n kube-system)',
  },
  // What each backend's device takes off the uplink's MTU (vxlan, wireguard).
  overlays: [
    { pattern: '^flannel\\.\\d+$', kind: 'VXLAN', overhead: 50 },
    { pattern: '^flannel-v6\\.\\d+$', kind: 'VXLAN over IPv6', overhead: 70 },
    { pattern: '^flannel-wg$', kind: 'WireGuard', overhead: 60 },
    { pattern: '^flannel-wg-v6$', kind: 'WireGuard over IPv6', overhead: 80 },
  ],
  mtuSource: 'flanneld derives it from the uplink at start unless net-conf.json sets Backend.MTU',
  networkPolicy: {
    enforces: 'no',
    advice: 'Install Canal (Flannel networking with Calico policy), or replace Flannel with Calico or Cilium.',
  },
  leftoverWhy: {
    interfaces:
      'A leftover cni0 keeps its old address, so the next bridge-based CNI fails with `cni0 already has an IP address different from ...`; ' +
      "a leftover flannel.1 (VXLAN on UDP 8472) keeps routes to old pod subnets and blocks other CNIs' VXLAN devices (Cilium does not start: cilium/cilium#3219).",
    routes:
      "host-gw routes to other nodes' old pod subnets keep sending those ranges to the old nodes and break the next backend (k3s-io/k3s#2808).",
    firewall:
      "FLANNEL-POSTRTG keeps masquerading pod traffic after a migration, which hides pods' source addresses from the new CNI and silently breaks NetworkPolicy (projectcalico/calico#12920); " +
      'FLANNEL-FWD keeps accepting forwarded traffic for the old pod network.',
  },
};
