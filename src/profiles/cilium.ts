// Cilium, checked against cilium/cilium: the CNI config writer (daemon/cmd/cni/config.go: plugin type
// cilium-cni, 05-cilium.conflist, other configs renamed to <name>.cilium_bak with cni.exclusive) and
// the older install scripts (plugins/cilium-cni/cni-install.sh: 05-cilium.conf, 04-flannel-cilium-
// cni.conflist; cilium-dbg cleanup: 10-, 00-, 05-cilium-cni.conf); pkg/defaults (RuntimePath
// /var/run/cilium with the pidfile cilium.pid, LibraryPath /var/lib/cilium, DefaultCgroupRoot
// /run/cilium/cgroupv2, /var/run/cilium/cgroupv2 before 1.11); the devices (pkg/defaults HostDevice,
// SecondHostDevice, VxlanDevice, GeneveDevice, IPIPv4Device, IPIPv6Device; pkg/wireguard IfaceName;
// the fallback tunnels the loader renames, tunl0 -> cilium_tunl, ip6tnl0 -> cilium_ip6tnl, and
// sit0 -> cilium_sit before 1.15); pod veths from pkg/datapath/connector Endpoint2IfName ("lxc" +
// sha256 truncated to IFNAMSIZ - len("tmp") - 1 = 12 hex) and before it "lxc" + 5 characters of the
// container ID (the length cilium-dbg cleanup still matches); the iptables manager
// (pkg/datapath/iptables: CILIUM_* chains, OLD_CILIUM_* while it replaces them, feeder rules in the
// built-in chains commented "cilium-feeder: <chain>", raw PREROUTING rules commented
// "cilium-xfrm-notrack:" in older releases, ipsets cilium_node_set_v4/v6).
// Its BPF state, ip rules and routing tables are described in their own schema sections.
import type { ProfileInput } from './schema.js';

export const cilium: ProfileInput = {
  name: 'cilium',
  description: 'Cilium (VXLAN, Geneve, native routing, WireGuard; iptables feeder chains)',
  config: { pluginTypes: ['cilium-cni'], renamedSuffixes: ['.cilium_bak'] },
  // The default config's network name ("name": "cilium"): libcni's result caches are named after it.
  defaultNetworks: ['cilium'],
  state: {
    // /run/cilium holds the cgroup2 mount (and the bpffs fallback); /var/run/cilium is the same
    // directory where /var/run links to /run, and both are listed for nodes where it does not.
    paths: ['/var/run/cilium', '/run/cilium', '/var/lib/cilium'],
    mounts: ['/run/cilium/cgroupv2', '/var/run/cilium/cgroupv2'],
  },
  interfaces: {
    names: ['cilium_host', 'cilium_net', 'cilium_vxlan', 'cilium_geneve', 'cilium_wg0', 'cilium_ipip4', 'cilium_ipip6', 'lxc_health'],
    patterns: ['^lxc[0-9a-f]{12}$', '^lxc[0-9a-f]{5}$'],
    bridgePorts: false,
    // The kernel's fallback tunnels, renamed: their modules own them and `ip link delete` cannot remove them.
    kernelOwned: ['cilium_tunl', 'cilium_ip6tnl', 'cilium_sit'],
  },
  // Its routes go through cilium_host and its overlay devices, and go with them. Its policy routing
  // (pkg/datapath/linux/linux_defaults): priority 9 `fwmark 0x200/0xf00 lookup 2004` (proxy
  // delivery, table 2004 holds `local 0.0.0.0/0 dev lo`) and priority 10 `lookup 2005` (to the proxy
  // via cilium_host), both proto kernel, so matched by priority and table, not protocol. Where
  // present: IPsec (priority 1, table 200), WireGuard (priority 1, table 201), VTEP (priority 112,
  // table 202): their rules go by that exact pair, but tables 200-202 are not flushed, as a site may
  // number its own tables there. The priority-100 `lookup local` rule Cilium moved from priority 0
  // stays: deleting it alone would cut the node's local delivery.
  routes: {
    rules: [
      { priority: 9, table: 2004 },
      { priority: 10, table: 2005 },
      { priority: 1, table: 200 },
      { priority: 1, table: 201 },
      { priority: 112, table: 202 },
    ],
    tables: [2004, 2005],
  },
  firewall: {
    chainPrefixes: ['CILIUM_', 'OLD_CILIUM_'],
    commentPrefixes: ['cilium-feeder:', 'cilium-xfrm-notrack:'],
    ipsetPrefixes: ['cilium_node_set_v4', 'cilium_node_set_v6'],
  },
  nftables: [],
  modules: [],
  // pkg/datapath/loader/loader.go's program symbols, as the kernel keeps them (BPF_OBJ_NAME_LEN: the
  // first 15 characters, cil_from_container is cil_from_contai) (Cilium's own test for its programs is the
  // `cil_` prefix: hasCiliumTCFilters, hasCiliumTCXLinks); filters loaded by iproute2 in older
  // releases are named `bpf_<object>.o:[<section>]` (cilium-dbg cleanup's getTCFilters). Pins:
  // pkg/bpf/bpffs_linux.go (<bpffs>/cilium holds the pinned links; tc/globals/cilium_* the maps),
  // links before maps.
  bpf: {
    programNames: [
      'cil_from_contai',
      'cil_to_containe',
      'cil_from_networ',
      'cil_from_netdev',
      'cil_to_netdev',
      'cil_from_host',
      'cil_to_host',
      'cil_from_overla',
      'cil_to_overlay',
      'cil_from_wiregu',
      'cil_to_wireguar',
      'cil_xdp_entry',
    ],
    programPatterns: ['^cil_'],
    filterNamePatterns: ['^bpf_(host|lxc|netdev|network|overlay)\\.o:\\[', '^cil_'],
    pins: ['cilium', 'tc/globals/cilium_*'],
  },
  // The DaemonSet cilium (namespace kube-system) runs `cilium-agent --config-dir=...`; the agent
  // writes its pid to /var/run/cilium/cilium.pid while it runs (cilium-dbg cleanup refuses then).
  agents: {
    processes: [{ name: 'cilium-agent' }],
    pidfiles: ['/var/run/cilium/cilium.pid', '/run/cilium/cilium.pid'],
    stop: 'helm uninstall cilium -n kube-system (cilium CLI installs: cilium uninstall; manifests: kubectl -n kube-system delete daemonset cilium)',
  },
  // linux_defaults.go: RulePriorityProxyIngress 9 (to-proxy mark 0x200 in 0xf00, table 2004), priority 10 the
  // proxy's own outgoing traffic in older releases (table 2005); the programs act on every packet of their device.
  leftoverWhy: {
    policyRouting:
      "They are looked up before the main table: packets carrying Cilium's proxy marks (0x200 in 0xf00) still go to table 2004, " +
      'which delivers them to this host where no proxy listens any more, so traffic another tool marks with those bits is lost.',
    bpf:
      "Cilium's programs stay attached to host devices and keep acting on every packet through them (policy, service translation, redirects into pod veths) " +
      'with maps nothing updates any more, and its pins keep those maps in the kernel: traffic through those devices is dropped or sent where no pod is.',
  },
};
