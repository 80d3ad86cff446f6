// Adds kube-router's node state to a test node (see flannel-node.ts), in the shapes
// cloudnativelabs/kube-router writes them (src/profiles/kube-router.ts names the sources): kube-bridge
// with pod veths whose peers sit in pod namespaces, a tun-<hex> tunnel (a vxlan link under that name:
// this kernel has no ipip), proto 17 routes, ip rules to tables 77-79 beside a site's own rule and
// table, iproute2's rt_tables with the site's lines, KUBE-ROUTER-*, KUBE-NWPLCY-*, KUBE-POD-FW-* chains
// beside kube-proxy's whole KUBE-* chain set in iptables-nft and iptables-legacy, its ipsets and
// nftables tables, and podman's bridge config, which is not kube-router's.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inNs, PODMAN_CONFLIST, sh, write } from './flannel-node.js';

/** kube-router's CNI config; its pod range is 10.<octet>.1.0/24. */
export const kubeRouterConflist = (octet = 245) => `{
   "cniVersion":"0.3.0",
   "name":"mynet",
   "plugins":[
      {
         "name":"kubernetes",
         "type":"bridge",
         "bridge":"kube-bridge",
         "isDefaultGateway":true,
         "ipam":{
            "type":"host-local",
            "ranges":[[{"subnet":"10.${octet}.1.0/24"}]]
         }
      }
   ]
}
`;
export const KUBE_ROUTER_CONFLIST = kubeRouterConflist();

/** kube-router's name for the tunnel to a peer (pkg/tunnels GenerateTunnelName). */
export const tunnelName = (ip: string) => 'tun-' + createHash('sha256').update(ip.replace(/[.:]/g, '')).digest('hex').slice(0, 11);

export const RT_TABLES_SITE =
  '#\n# reserved values\n#\n255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n#\n# local\n#\n100 site-uplink\n200\texternal_ip\n';
export const RT_TABLES = RT_TABLES_SITE + '77 kube-router\n78 kube-router-dsr\n79 external_ip\n';

/** kube-proxy's chains (iptables mode) and kubelet's, as on a real node: every one must stay. */
function kubeProxyRules(): string {
  return [
    '*mangle',
    ':KUBE-IPTABLES-HINT - [0:0]',
    ':KUBE-KUBELET-CANARY - [0:0]',
    ':KUBE-PROXY-CANARY - [0:0]',
    'COMMIT',
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
    ':KUBE-MARK-DROP - [0:0]',
    ':KUBE-KUBELET-CANARY - [0:0]',
    ':KUBE-PROXY-CANARY - [0:0]',
    ':KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]',
    ':KUBE-SEP-VPILYQBSPPXYB66K - [0:0]',
    ':KUBE-EXT-UOPHY4PIRIR7H3EB - [0:0]',
    ':KUBE-SVL-UOPHY4PIRIR7H3EB - [0:0]',
    ':KUBE-FW-UOPHY4PIRIR7H3EB - [0:0]',
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000',
    '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y',
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    '-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 192.168.1.10:6443" -j KUBE-SEP-VPILYQBSPPXYB66K',
    '-A KUBE-SEP-VPILYQBSPPXYB66K -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 192.168.1.10:6443',
    '-A KUBE-EXT-UOPHY4PIRIR7H3EB -j KUBE-SVL-UOPHY4PIRIR7H3EB',
    'COMMIT',
    '*filter',
    ':KUBE-FIREWALL - [0:0]',
    ':KUBE-PROXY-FIREWALL - [0:0]',
    ':KUBE-EXTERNAL-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-KUBELET-CANARY - [0:0]',
    ':KUBE-PROXY-CANARY - [0:0]',
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
    '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
    '-A INPUT -j KUBE-FIREWALL',
    '-A OUTPUT -j KUBE-FIREWALL',
    '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    'COMMIT',
    '',
  ].join('\n');
}

/** kube-router's rules (netpol, routing's forward accepts and pod egress masquerade) for one backend. */
function kubeRouterRules(v6 = false): string {
  const p = v6 ? 'inet6:' : '';
  return [
    '*nat',
    `-A POSTROUTING -m set --match-set ${p}kube-router-pod-subnets src -m set ! --match-set ${p}kube-router-pod-subnets dst -m set ! --match-set ${p}kube-router-node-ips dst -j MASQUERADE --random-fully`,
    'COMMIT',
    '*filter',
    ':KUBE-ROUTER-INPUT - [0:0]',
    ':KUBE-ROUTER-FORWARD - [0:0]',
    ':KUBE-ROUTER-OUTPUT - [0:0]',
    ':KUBE-NWPLCY-DEFAULT - [0:0]',
    ':KUBE-NWPLCY-COMMON - [0:0]',
    ':KUBE-NWPLCY-LBJNUYSNPQPXQTDY - [0:0]',
    ':KUBE-POD-FW-3VDZ6VLJDN5WMH7R - [0:0]',
    '-I INPUT 1 -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT',
    '-I FORWARD 1 -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD',
    '-I OUTPUT 1 -m comment --comment "kube-router netpol - VEAAIY32XVBHCSCY" -j KUBE-ROUTER-OUTPUT',
    '-A FORWARD -i kube-bridge -m comment --comment "allow outbound traffic from pods" -j ACCEPT',
    '-A FORWARD -o kube-bridge -m comment --comment "allow inbound traffic to pods" -j ACCEPT',
    '-A FORWARD -o eth0 -m comment --comment "allow outbound node port traffic on node interface with which node ip is associated" -j ACCEPT',
    '-A KUBE-ROUTER-FORWARD -m comment --comment "default/web in" -j KUBE-POD-FW-3VDZ6VLJDN5WMH7R',
    `-A KUBE-POD-FW-3VDZ6VLJDN5WMH7R -m comment --comment "default/web policy" -j KUBE-NWPLCY-LBJNUYSNPQPXQTDY`,
    `-A KUBE-NWPLCY-LBJNUYSNPQPXQTDY -m comment --comment "default/allow ingress pods" -m set --match-set ${p}KUBE-SRC-X6Q5MZQHDQP5T6ZU src -m set --match-set ${p}KUBE-DST-UDHDHRLBQGTPKCGN dst -j MARK --set-xmark 0x10000/0x10000`,
    '-A KUBE-NWPLCY-DEFAULT -m comment --comment "rule to mark traffic matching a network policy" -j MARK --set-xmark 0x10000/0x10000',
    'COMMIT',
    '',
  ].join('\n');
}

/** ipset restore lines: kube-router's sets, then kube-proxy's (IPVS mode) and the site's, which stay. */
const ipsets = (octet: number) => [
  'create kube-router-pod-subnets hash:net family inet',
  `add kube-router-pod-subnets 10.${octet}.0.0/16`,
  'create kube-router-node-ips hash:ip family inet',
  'add kube-router-node-ips 192.168.1.11',
  'create KUBE-SRC-X6Q5MZQHDQP5T6ZU hash:ip family inet',
  'create KUBE-DST-UDHDHRLBQGTPKCGN hash:ip family inet',
  'create inet6:kube-router-pod-subnets hash:net family inet6',
  'create inet6:kube-router-node-ips hash:ip family inet6',
  'create inet6:KUBE-SRC-X6Q5MZQHDQP5T6ZU hash:ip family inet6',
  'create inet6:KUBE-DST-UDHDHRLBQGTPKCGN hash:ip family inet6',
  'create KUBE-CLUSTER-IP hash:ip,port family inet',
  'create site-allow hash:net family inet',
];
/** kube-router's ipsets. */
export const KR_SETS = /^(inet6:)?(kube-router-|KUBE-SRC-|KUBE-DST-)/;

export const PEER = '192.168.2.12';
export const TUN = tunnelName(PEER);

export interface KubeRouterOptions {
  /** Its config's file name (00-kuberouter.conflist comes before Flannel's and Calico's). */
  conf?: string;
  /** Its pod network is 10.<octet>.0.0/16 (10.<octet>.1.0/24 on this node), fd00:10:<octet>:1::/64 for IPv6. */
  octet?: number;
}

/** Adds kube-router's node state to a node built by createFlannelNode (uplink eth0 192.168.1.11/24); returns its pods' namespaces' names. */
export function addKubeRouter(n: { ns: string; root: string }, o: KubeRouterOptions = {}): { netns: string[] } {
  const x = o.octet ?? 245;
  const ipb = (lines: string[], family = '') => inNs(n.ns, 'ip', [...(family ? [family] : []), '-batch', '-'], lines.join('\n') + '\n');
  // Pods: veths on kube-bridge whose peers sit in pod namespaces under the root.
  const netnsDir = path.join(n.root, 'run/netns');
  fs.mkdirSync(netnsDir, { recursive: true });
  const lines = ['link add kube-bridge type bridge', 'link set kube-bridge up', `addr add 10.${x}.1.1/24 dev kube-bridge`];
  const netns: string[] = [];
  for (const i of [0, 1]) {
    // Named as containerd names them: cni-<uuid>.
    const u = createHash('sha256').update(`kube-router-pod-${n.ns}-${i}`).digest('hex');
    const name = `cni-${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20, 32)}`;
    netns.push(name);
    const file = path.join(netnsDir, name);
    fs.writeFileSync(file, '');
    sh('unshare', [`--net=${file}`, 'true']);
    lines.push(
      `link add vethkr${i} type veth peer name eth0 netns ${file}`,
      `link set vethkr${i} master kube-bridge`,
      `link set vethkr${i} up`,
    );
  }
  lines.push(
    // A tunnel to a peer in another subnet; kube-router makes an ipip link, which this kernel lacks.
    `link add ${TUN} type vxlan id 77 local 192.168.1.11 dev eth0 dstport 4789`,
    `link set ${TUN} up`,
    `route add 10.${x}.3.0/24 dev ${TUN} proto 17 src 192.168.1.11`,
    `route add ${PEER} dev ${TUN} table 77`,
    // A peer on the same subnet: its pod CIDR via the uplink, learnt over BGP.
    `route add 10.${x}.2.0/24 via 192.168.1.12 dev eth0 proto 17`,
    // DSR: local delivery of fwmarked packets; external IPs.
    'route add local default dev lo table 78 scope host',
    'route add 10.96.0.50 dev kube-bridge table 79',
    `rule add from 10.${x}.1.0/24 lookup 77`,
    'rule add priority 32764 fwmark 0x3e8 lookup 78',
    'rule add priority 32765 from all lookup 79',
    // The site's own policy routing: a rule at kube-router's priority to another table, and its table.
    'route add 10.50.0.0/16 via 192.168.1.1 dev eth0 table 100',
    'rule add priority 32765 from 10.50.0.0/16 lookup 100',
    'rule add priority 1000 to 10.60.0.0/16 lookup 100',
  );
  ipb(lines);
  ipb(
    [
      'route add local default dev lo table 78',
      `rule add from fd00:10:${x}:1::/64 lookup 77`,
      'rule add priority 32765 from all lookup 79',
    ],
    '-6',
  );
  // A set the node has already (another CNI's fixture made the site's) is not made twice.
  const have = new Set(inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean));
  const sets = ipsets(x).filter((l) => !have.has(l.split(' ')[1]!));
  inNs(n.ns, 'ipset', ['restore'], sets.join('\n') + '\n');
  for (const b of ['nft', 'legacy']) {
    inNs(n.ns, `iptables-${b}-restore`, ['--noflush'], kubeProxyRules());
    inNs(n.ns, `iptables-${b}-restore`, ['--noflush'], kubeRouterRules());
  }
  inNs(n.ns, 'ip6tables-nft-restore', ['--noflush'], kubeRouterRules(true));
  inNs(
    n.ns,
    'nft',
    ['-f', '-'],
    [
      'table ip kube-router-filter-ipv4 {',
      '  chain KUBE-ROUTER-INPUT { type filter hook input priority -1; policy accept; }',
      '}',
      'table ip6 kube-router-filter-ipv6 {',
      '  chain KUBE-ROUTER-INPUT { type filter hook input priority -1; policy accept; }',
      '}',
      '',
    ].join('\n'),
  );
  write(n.root, `etc/cni/net.d/${o.conf ?? '10-kuberouter.conflist'}`, kubeRouterConflist(x));
  write(n.root, 'etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
  write(n.root, 'etc/iproute2/rt_tables', RT_TABLES);
  write(n.root, `var/lib/cni/networks/mynet/10.${x}.1.2`, `${'a'.repeat(64)}\r\neth0`, 0o600);
  write(n.root, 'var/lib/cni/networks/mynet/last_reserved_ip.0', `10.${x}.1.2`, 0o600);
  write(n.root, 'var/lib/kube-router/kubeconfig', 'apiVersion: v1\nkind: Config\n', 0o600);
  return { netns };
}
