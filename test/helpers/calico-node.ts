// Adds a Calico install to a test node (see flannel-node.ts): cali veths whose peers sit in cni-*
// namespaces, vxlan.calico, per-pod routes, BIRD (proto bird) and felix (proto 80) routes and IPAM
// blackholes, cali-* chains in raw, mangle, nat and filter with `cali:` comments, cali40 ipsets, the
// nftables-mode `ip calico` table, and Calico's files. Shapes follow projectcalico/calico's felix
// (rules/rule_defs.go) and CNI plugin; fixtures/calico/ holds the same shapes as text.
import { createHash } from 'node:crypto';
import { inNs, write } from './flannel-node.js';
import { podNamespaces } from './pod-netns.js';

export interface CalicoPod {
  cid: string;
  ip: string;
  veth: string;
  netns: string;
}

export const CALICO_CONFLIST = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "nodename": "node-1",
      "mtu": 0,
      "ipam": { "type": "calico-ipam" },
      "policy": { "type": "k8s" },
      "kubernetes": { "kubeconfig": "/etc/cni/net.d/calico-kubeconfig" }
    },
    { "type": "portmap", "snat": true, "capabilities": { "portMappings": true } },
    { "type": "bandwidth", "capabilities": { "bandwidth": true } }
  ]
}
`;

export const CANAL_CONFLIST = CALICO_CONFLIST.replace(
  '"ipam": { "type": "calico-ipam" }',
  '"ipam": { "type": "host-local", "subnet": "usePodCidr" }',
);

const hex = (s: string, n: number) => createHash('sha1').update(s).digest('hex').slice(0, n);
const tag = (s: string) => `cali:${createHash('sha256').update(s).digest('base64url').slice(0, 16)}`;

/** iptables-restore input for Calico's felix chains; pods get per-workload chains. */
export function calicoRules(pods: CalicoPod[]): string {
  const c = (s: string) => `-m comment --comment "${tag(s)}"`;
  const raw = [
    '*raw',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':cali-PREROUTING - [0:0]',
    ':cali-OUTPUT - [0:0]',
    ':cali-from-host-endpoint - [0:0]',
  ];
  raw.push(`-A PREROUTING ${c('raw-pre')} -j cali-PREROUTING`, `-A OUTPUT ${c('raw-out')} -j cali-OUTPUT`);
  raw.push(`-A cali-PREROUTING ${c('raw-1')} -j MARK --set-xmark 0x0/0xf0000`);
  raw.push(`-A cali-PREROUTING -i cali+ ${c('raw-2')} -j MARK --set-xmark 0x40000/0x40000`);
  raw.push(`-A cali-PREROUTING ${c('raw-3')} -m mark --mark 0x0/0x40000 -j cali-from-host-endpoint`);
  raw.push(`-A cali-OUTPUT ${c('raw-4')} -j MARK --set-xmark 0x0/0xf0000`);
  const mangle = [
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':cali-PREROUTING - [0:0]',
    ':cali-POSTROUTING - [0:0]',
  ];
  mangle.push(`-A PREROUTING ${c('mangle-pre')} -j cali-PREROUTING`, `-A POSTROUTING ${c('mangle-post')} -j cali-POSTROUTING`);
  mangle.push(`-A cali-PREROUTING ${c('mangle-1')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  mangle.push('-A PREROUTING -p tcp -m tcp --dport 2222 -j MARK --set-xmark 0x7/0xffffffff'); // the site's own
  const nat = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':cali-PREROUTING - [0:0]',
    ':cali-POSTROUTING - [0:0]',
    ':cali-OUTPUT - [0:0]',
    ':cali-nat-outgoing - [0:0]',
    ':cali-fip-dnat - [0:0]',
    ':cali-fip-snat - [0:0]',
  ];
  nat.push(
    `-A PREROUTING ${c('nat-pre')} -j cali-PREROUTING`,
    `-A OUTPUT ${c('nat-out')} -j cali-OUTPUT`,
    `-A POSTROUTING ${c('nat-post')} -j cali-POSTROUTING`,
  );
  nat.push(`-A cali-PREROUTING ${c('nat-1')} -j cali-fip-dnat`, `-A cali-OUTPUT ${c('nat-2')} -j cali-fip-dnat`);
  nat.push(`-A cali-POSTROUTING ${c('nat-3')} -j cali-fip-snat`, `-A cali-POSTROUTING ${c('nat-4')} -j cali-nat-outgoing`);
  nat.push(
    `-A cali-nat-outgoing ${c('nat-5')} -m set --match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst -j MASQUERADE --random-fully`,
  );
  const filter = [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':cali-INPUT - [0:0]',
    ':cali-FORWARD - [0:0]',
    ':cali-OUTPUT - [0:0]',
    ':cali-wl-to-host - [0:0]',
    ':cali-from-wl-dispatch - [0:0]',
    ':cali-to-wl-dispatch - [0:0]',
  ];
  filter.push(`-A INPUT ${c('f-in')} -j cali-INPUT`, `-A FORWARD ${c('f-fwd')} -j cali-FORWARD`, `-A OUTPUT ${c('f-out')} -j cali-OUTPUT`);
  filter.push(
    `-A FORWARD ${c('f-accept')} -m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT`,
  );
  filter.push(
    `-A cali-INPUT -i cali+ ${c('f-1')} -g cali-wl-to-host`,
    `-A cali-FORWARD -i cali+ ${c('f-2')} -j cali-from-wl-dispatch`,
    `-A cali-FORWARD -o cali+ ${c('f-3')} -j cali-to-wl-dispatch`,
  );
  filter.push(`-A cali-wl-to-host ${c('f-4')} -j cali-from-wl-dispatch`);
  filter.push(`-A cali-INPUT -m set --match-set cali40all-hosts-net src ${c('f-5')} -j ACCEPT`);
  for (const p of pods) {
    const fw = `cali-fw-${p.veth}`;
    const tw = `cali-tw-${p.veth}`;
    filter.push(`:${fw} - [0:0]`, `:${tw} - [0:0]`);
    filter.push(
      `-A cali-from-wl-dispatch -i ${p.veth} ${c(`d-${p.cid}`)} -g ${fw}`,
      `-A cali-to-wl-dispatch -o ${p.veth} ${c(`t-${p.cid}`)} -g ${tw}`,
    );
    filter.push(
      `-A ${fw} ${c(`fw-${p.cid}`)} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      `-A ${tw} ${c(`tw-${p.cid}`)} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    );
  }
  return [...raw, 'COMMIT', ...mangle, 'COMMIT', ...nat, 'COMMIT', ...filter, 'COMMIT', ''].join('\n');
}

export const CALICO_NFT = `table ip calico {
  set cali40this-host {
    type ipv4_addr
    elements = { 127.0.0.1, 192.168.1.11 }
  }
  chain filter-FORWARD {
    type filter hook forward priority filter; policy accept;
    ip saddr @cali40this-host accept
  }
}
`;

export interface CalicoInstall {
  pods: CalicoPod[];
  /** Calico's IPAM block on this node, and another node's. */
  block: string;
}

/** Adds Calico to an existing test node (namespace and root made by createFlannelNode). */
export function addCalico(
  node: { ns: string; root: string },
  o: { pods?: number; backend?: 'nft' | 'legacy'; canal?: boolean } = {},
): CalicoInstall {
  const n = o.pods ?? 2;
  const ipb = (lines: string[]) => inNs(node.ns, 'ip', ['-batch', '-'], lines.join('\n') + '\n');
  const lines: string[] = [
    'link add vxlan.calico type vxlan id 4096 local 192.168.1.11 dev eth0 dstport 4789 nolearning',
    'link set vxlan.calico mtu 1450',
    'link set vxlan.calico up',
    'addr add 172.20.5.0/32 dev vxlan.calico',
  ];
  const made = podNamespaces(node.root, n, (i) => {
    const cid = hex(`${node.ns}-calico-${i}`, 40) + hex(`x${i}`, 24);
    return { cid, ip: `172.20.5.${i + 2}`, veth: `cali${hex(`k8s_${cid}`, 11)}`, uuid: hex(`calico-uuid-${node.ns}-${i}`, 32) };
  });
  lines.push(...made.lines, ...made.pods.map((p) => `route add ${p.ip} dev ${p.veth} scope link`));
  const pods: CalicoPod[] = made.pods.map(({ cid, ip, veth, netns }) => ({ cid, ip, veth, netns }));
  lines.push(
    'route add blackhole 172.20.5.0/26 proto bird',
    'route add 172.20.6.0/26 via 192.168.1.12 dev eth0 proto bird',
    'route add 172.20.7.0/26 via 172.20.7.0 dev vxlan.calico onlink proto 80',
    'route add blackhole 172.20.8.0/26 proto 80',
  );
  ipb(lines);
  inNs(
    node.ns,
    'ipset',
    ['restore'],
    [
      'create cali40masq-ipam-pools hash:net family inet',
      'add cali40masq-ipam-pools 172.20.0.0/16',
      'create cali40all-ipam-pools hash:net family inet',
      'add cali40all-ipam-pools 172.20.0.0/16',
      'create cali40all-hosts-net hash:net family inet',
      'create site-allow hash:ip family inet',
      '',
    ].join('\n'),
  );
  inNs(node.ns, (o.backend ?? 'nft') === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore', ['--noflush'], calicoRules(pods));
  inNs(node.ns, 'nft', ['-f', '-'], CALICO_NFT);

  const r = node.root;
  if (o.canal) write(r, 'etc/cni/net.d/10-canal.conflist', CANAL_CONFLIST);
  else write(r, 'etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
  write(r, 'etc/cni/net.d/calico-kubeconfig', 'apiVersion: v1\nkind: Config\nclusters: []\n', 0o600);
  write(r, 'var/lib/calico/nodename', 'node-1');
  write(r, 'var/lib/calico/mtu', '1450');
  write(r, 'var/run/calico/cni-ipam.lock', '');
  write(r, 'var/log/calico/cni/cni.log', '2026-11-21 12:00:00.000 [INFO] Calico CNI IPAM request count IPv4=1\n');
  for (const p of pods)
    write(
      r,
      `var/lib/cni/results/k8s-pod-network-${p.cid}-eth0`,
      JSON.stringify({ kind: 'cniCacheV1', containerId: p.cid, networkName: 'k8s-pod-network', ifName: 'eth0' }),
      0o600,
    );
  return { pods, block: '172.20.5.0/26' };
}
