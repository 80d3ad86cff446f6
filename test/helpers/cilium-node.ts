// Adds what a Cilium agent leaves on a node to a test node (see flannel-node.ts), in the shapes
// cilium/cilium writes them (src/profiles/cilium.ts names the sources): the cilium_host/cilium_net
// veth pair, cilium_vxlan (external, on 8473 as the migration guide sets it beside Flannel's 8472),
// pod veths lxc<12 hex> and lxc_health whose peers sit in cni-* namespaces, routes via cilium_host,
// CILIUM_* chains with `cilium-feeder: <chain>` jumps from the built-in chains (and an OLD_CILIUM_
// chain from a restart) in iptables-nft and iptables-legacy, IPv4 and IPv6, the cilium_node_set_v4
// ipset, 05-cilium.conflist, the agent's state and pidfile, a cgroup2 mount at /run/cilium/cgroupv2,
// and configs it set aside as *.cilium_bak; with policyRouting, its proxy rules (priorities 9 and 10) and tables 2004/2005.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inNs, sh, write } from './flannel-node.js';
import { podNamespaces } from './pod-netns.js';

export const CILIUM_CONFLIST = `{
  "cniVersion": "0.3.1",
  "name": "cilium",
  "plugins": [
    {
       "type": "cilium-cni",
       "enable-debug": false,
       "log-file": "/var/run/cilium/cilium-cni.log"
    }
  ]
}
`;

/** A config of some other network, as Cilium's cni.exclusive renames it aside. */
export const MACVLAN_CONF = `{
  "cniVersion": "0.4.0",
  "name": "lan",
  "type": "macvlan",
  "master": "eth0",
  "ipam": { "type": "dhcp" }
}
`;

const hex = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** CILIUM_* chains and their feeders for one table set, as Cilium's iptables manager installs them. */
export function ciliumRules(family: 4 | 6): string {
  const feed = (chain: string, builtin: string, target = chain) =>
    `-A ${builtin} -m comment --comment "cilium-feeder: ${chain}" -j ${target}`;
  const pods = family === 4 ? '10.245.0.0/16' : 'fd00:245::/64';
  const raw = ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':CILIUM_PRE_raw - [0:0]', ':CILIUM_OUTPUT_raw - [0:0]'];
  raw.push(feed('CILIUM_PRE_raw', 'PREROUTING'), feed('CILIUM_OUTPUT_raw', 'OUTPUT'));
  raw.push(`-A CILIUM_PRE_raw -m mark --mark 0x200/0xf00 -m comment --comment "cilium: NOTRACK for proxy traffic" -j CT --notrack`);
  const mangle = [
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':CILIUM_PRE_mangle - [0:0]',
    ':CILIUM_POST_mangle - [0:0]',
  ];
  mangle.push(feed('CILIUM_PRE_mangle', 'PREROUTING'), feed('CILIUM_POST_mangle', 'POSTROUTING'));
  mangle.push(
    `-A CILIUM_PRE_mangle -m socket --transparent -m comment --comment "cilium: any->pod redirect proxied traffic to host proxy" -j MARK --set-xmark 0x200/0xffffffff`,
  );
  const nat = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':CILIUM_PRE_nat - [0:0]',
    ':CILIUM_OUTPUT_nat - [0:0]',
    ':CILIUM_POST_nat - [0:0]',
  ];
  nat.push(feed('CILIUM_PRE_nat', 'PREROUTING'), feed('CILIUM_OUTPUT_nat', 'OUTPUT'), feed('CILIUM_POST_nat', 'POSTROUTING'));
  nat.push(
    family === 4
      ? `-A CILIUM_POST_nat -s ${pods} -m set ! --match-set cilium_node_set_v4 dst -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE`
      : `-A CILIUM_POST_nat -s ${pods} ! -o cilium_+ -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE`,
  );
  const filter = [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':CILIUM_INPUT - [0:0]',
    ':CILIUM_FORWARD - [0:0]',
    ':CILIUM_OUTPUT - [0:0]',
    ':OLD_CILIUM_FORWARD - [0:0]',
  ];
  filter.push(
    feed('CILIUM_INPUT', 'INPUT'),
    feed('CILIUM_FORWARD', 'FORWARD'),
    feed('CILIUM_OUTPUT', 'OUTPUT'),
    // A restart renames the chains OLD_CILIUM_* and swaps the feeders; one was left behind.
    feed('CILIUM_FORWARD', 'FORWARD', 'OLD_CILIUM_FORWARD'),
  );
  filter.push(
    `-A CILIUM_FORWARD -o cilium_host -m comment --comment "cilium: any->cluster on cilium_host forward accept" -j ACCEPT`,
    `-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT`,
    `-A CILIUM_INPUT -m mark --mark 0x200/0xf00 -m comment --comment "cilium: ACCEPT for proxy traffic" -j ACCEPT`,
    `-A CILIUM_OUTPUT -m mark --mark 0xa00/0xfffffeff -m comment --comment "cilium: ACCEPT for proxy return traffic" -j ACCEPT`,
    `-A OLD_CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT`,
    // The site's own rule that merely mentions Cilium: never Cilium's.
    `-A FORWARD -s ${family === 4 ? '10.9.0.0/16' : 'fd09::/64'} -m comment --comment "site: cilium lab" -j ACCEPT`,
  );
  return [...raw, 'COMMIT', ...mangle, 'COMMIT', ...nat, 'COMMIT', ...filter, 'COMMIT', ''].join('\n');
}

export interface CiliumInstall {
  /** Host ends of the pod veths (lxc + 12 hex), and lxc_health. */
  veths: string[];
  /** Pod network namespaces (names under /run/netns). */
  netns: string[];
  /** Real path of the cgroup2 mount (umount it in afterEach if a test stops before the run). */
  cgroupMount: string;
}

/** Adds Cilium's leftovers to an existing test node (namespace and root made by createFlannelNode). */
export function addCilium(
  node: { ns: string; root: string },
  o: { pods?: number; mount?: boolean; policyRouting?: boolean } = {},
): CiliumInstall {
  const n = o.pods ?? 2;
  const ipb = (lines: string[]) => inNs(node.ns, 'ip', ['-batch', '-'], lines.join('\n') + '\n');
  const lines = [
    'link add cilium_host type veth peer name cilium_net',
    'link set cilium_host up',
    'link set cilium_net up',
    'addr add 10.245.0.1/32 dev cilium_host',
    'link add cilium_vxlan type vxlan external dstport 8473',
    'link set cilium_vxlan up',
    // Cilium's are `via <cilium_host's address>`, which iproute2 refuses to add by hand: the same devices.
    'route add 10.245.0.0/24 dev cilium_host src 10.245.0.1 proto kernel',
    'route add 10.245.1.0/24 dev cilium_host src 10.245.0.1 mtu 1450 proto kernel',
    // Not Cilium's, whatever the name suggests: a veth pair and LXC's own bridge.
    'link add lxcfoo type veth peer name lxcfoo-p',
    'link add lxcbr0 type bridge',
  ];
  const pods = podNamespaces(node.root, n + 1, (i) => ({
    uuid: hex(`cilium-uuid-${node.ns}-${i}`, 32),
    // The last one is the health endpoint.
    veth: i === n ? 'lxc_health' : `lxc${hex(`endpoint-${node.ns}-${i}`, 12)}`,
  }));
  lines.push(...pods.lines);
  if (o.policyRouting)
    lines.push(
      // pkg/datapath/linux/linux_defaults: to the proxy (priority 9, fwmark 0x200/0xf00, table 2004
      // holding local delivery) and from it (priority 10, fwmark 0xa00/0xf00, table 2005 via
      // cilium_host); the agent moves the `lookup local` rule from priority 0 to 100 first.
      'rule add priority 100 lookup local',
      'rule del priority 0',
      'rule add priority 9 fwmark 0x200/0xf00 lookup 2004 proto kernel',
      'rule add priority 10 fwmark 0xa00/0xf00 lookup 2005 proto kernel',
      'route add local default dev lo table 2004 proto kernel',
      'route add 10.245.0.1 dev cilium_host table 2005 proto kernel',
      'route add default dev cilium_host table 2005 proto kernel',
    );
  ipb(lines);
  inNs(
    node.ns,
    'ipset',
    ['restore'],
    ['create cilium_node_set_v4 hash:ip family inet', 'add cilium_node_set_v4 192.168.1.12', ''].join('\n'),
  );
  for (const b of ['nft', 'legacy']) {
    inNs(node.ns, `iptables-${b}-restore`, ['--noflush'], ciliumRules(4));
    inNs(node.ns, `ip6tables-${b}-restore`, ['--noflush'], ciliumRules(6));
  }

  const r = node.root;
  write(r, 'etc/cni/net.d/05-cilium.conflist', CILIUM_CONFLIST);
  // Set aside by cni.exclusive: its own older config, another network's, and a name without a CNI extension.
  write(r, 'etc/cni/net.d/05-cilium.conf.cilium_bak', '{ "cniVersion": "0.3.1", "name": "cilium", "type": "cilium-cni" }\n');
  write(r, 'etc/cni/net.d/20-lan.conf.cilium_bak', MACVLAN_CONF);
  write(r, 'etc/cni/net.d/README.cilium_bak', 'not a CNI config\n');
  // A pid no process has: the agent died without removing it.
  write(r, 'var/run/cilium/cilium.pid', `${unusedPid()}\n`);
  write(r, 'var/run/cilium/state/health-endpoint.state', 'ok\n');
  write(r, 'var/run/cilium/deleteQueue/lockfile', '');
  write(r, 'var/lib/cilium/bpf/bpf_lxc.c', '/* datapath */\n');
  write(r, 'var/lib/cilium/tls/ca.crt', 'cert\n', 0o600);
  write(r, 'run/cilium/bpffs.README', 'fallback bpffs dir\n');
  const cgroupMount = path.join(r, 'run/cilium/cgroupv2');
  fs.mkdirSync(cgroupMount, { recursive: true });
  if (o.mount !== false) sh('mount', ['-t', 'cgroup2', 'none', cgroupMount]);
  return { veths: pods.pods.map((p) => p.veth), netns: pods.pods.map((p) => p.netns), cgroupMount };
}

/** Whether a real path is a mount point in this mount namespace. */
export function isMounted(real: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === real);
}

function unusedPid(): number {
  for (let pid = 4_000_000; ; pid--) if (!fs.existsSync(`/proc/${pid}`)) return pid;
}
