// Builds a dirty Flannel node for tests, the demo and the benchmark: a network namespace holding
// the kernel state (uplink, cni0 with pod veths whose peers sit in cni-* namespaces, flannel.1,
// routes, iptables/ip6tables rules on one backend, a flannel nftables table) and a temporary root
// holding the files. Everything "someone else" owns is added too, so tests can check it survives.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type Backend = 'nft' | 'legacy';

export interface FlannelNodeOptions {
  /** Name of the network namespace to create (in /run/netns). */
  ns: string;
  /** Temporary root directory to create the files in. */
  root: string;
  pods?: number;
  backend?: Backend;
  /** Foreign (site) filter rules to add, beyond the handful always present. */
  foreignRules?: number;
  /** Flannel rules as written before the "flanneld masq" comments (untagged, in POSTROUTING/FORWARD). */
  oldUntagged?: boolean;
  /** A podman bridge config that also uses portmap: the CNI-HOSTPORT-* chains are then shared. */
  podmanConfig?: boolean;
  ipv6?: boolean;
  nftTable?: boolean;
  /** Pod network; /16 holds up to 250 pods on a /24 node subnet, /14 with a /22 node subnet holds 1000. */
  big?: boolean;
  /** false: only the base node (uplink, docker0, kube-proxy and site rules, site files), no Flannel. */
  flannel?: boolean;
  /**
   * How <root>/run/netns sits, as on a real node (default: a directory on the file system the root
   * is on, as under a --root in /tmp):
   * - 'bind': a bind mount of itself, made shared, as `ip netns add` leaves it (iproute2
   *   ip/ipnetns.c: mount --rbind DIR DIR, then --make-rshared);
   * - 'tmpfs': <root>/run is a tmpfs, shared as systemd mounts /run, and the directory a plain one
   *   on it, as containerd makes it (pkg/netns: MkdirAll, then a bind mount per file);
   * - 'tmpfs+bind': both, as on a node where `ip netns add` ran once: the bind mount is a peer of
   *   /run, so each namespace file is mounted twice (on the bind mount and on /run beneath it).
   * destroyFlannelNode unmounts them.
   */
  netnsMount?: NetnsMount;
}

export type NetnsMount = 'bind' | 'tmpfs' | 'tmpfs+bind';

/** Mounts <root>/run and <root>/run/netns as `how` says (FlannelNodeOptions.netnsMount), before anything is written there. */
export function mountNetnsDir(root: string, how: NetnsMount | undefined): void {
  const run = path.join(root, 'run');
  const dir = path.join(run, 'netns');
  fs.mkdirSync(run, { recursive: true });
  if (how === 'tmpfs' || how === 'tmpfs+bind') {
    sh('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'cni-sweep-test-run', run]);
    sh('mount', ['--make-shared', run]);
  }
  fs.mkdirSync(dir, { recursive: true });
  if (how === 'bind' || how === 'tmpfs+bind') {
    sh('mount', ['--rbind', dir, dir]);
    sh('mount', ['--make-rshared', dir]);
  }
}

/** Mount points at or below `dir` (real paths), deepest first, once per mount (a path mounted twice is listed twice). */
export function mountsUnder(dir: string): string[] {
  const top = path.resolve(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === top || p.startsWith(`${top}/`))
    .sort((a, b) => b.length - a.length);
}

export interface FlannelNode {
  ns: string;
  nsPath: string;
  root: string;
  pods: Array<{ cid: string; ip: string; veth: string; netns: string }>;
  network: string;
  subnet: string;
}

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
}

export const inNs = (ns: string, cmd: string, args: string[], input?: string) =>
  sh('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], input);

const hex = (s: string, n: number) => createHash('sha512').update(s).digest('hex').slice(0, n);

export function write(root: string, p: string, content: string, mode = 0o644) {
  const full = path.join(root, p);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, content, { mode });
  fs.chmodSync(full, mode);
}

export const FLANNEL_CONFLIST = `{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": true
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}
`;

export const PODMAN_CONFLIST = `{
  "cniVersion": "0.4.0",
  "name": "podman",
  "plugins": [
    { "type": "bridge", "bridge": "cni-podman0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "routes": [{ "dst": "0.0.0.0/0" }], "ranges": [[{ "subnet": "10.88.0.0/16", "gateway": "10.88.0.1" }]] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" },
    { "type": "tuning" }
  ]
}
`;

function podIp(i: number, big: boolean): string {
  // Node subnet 10.244.1.0/24 (or 10.0.4.0/22 for the big node); .1 is the gateway.
  const n = i + 2;
  return big ? `10.0.${4 + Math.floor(n / 256)}.${n % 256}` : `10.244.1.${n}`;
}

/** iptables-restore input (v4) for a Flannel node, the given pods, and the site's own rules. */
export function ipv4Rules(o: {
  pods: FlannelNode['pods'];
  network: string;
  subnet: string;
  oldUntagged: boolean;
  podman: boolean;
  foreignRules: number;
  flannel?: boolean;
}): string {
  const { network: net, subnet: sub } = o;
  const nat: string[] = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]'];
  const filter: string[] = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  // kube-proxy
  nat.push(':KUBE-SERVICES - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-MARK-MASQ - [0:0]');
  nat.push('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  nat.push('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  nat.push('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING');
  nat.push('-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000');
  nat.push('-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN');
  nat.push('-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0');
  nat.push('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully');
  filter.push(':KUBE-FORWARD - [0:0]', '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD');
  filter.push('-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP');
  filter.push('-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -m comment --comment "kubernetes forwarding rules" -j ACCEPT');
  // the site's own rules, some mentioning the pod network
  filter.push('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', ':SITE-FW - [0:0]', '-A FORWARD -j SITE-FW');
  filter.push(`-A SITE-FW -s ${net} -d 192.168.50.0/24 -j DROP`);
  for (let i = 0; i < o.foreignRules; i++)
    filter.push(
      `-A SITE-FW -s 172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}/32 -p tcp -m tcp --dport ${1024 + (i % 60000)} -j ACCEPT`,
    );
  nat.push(`-A POSTROUTING -s ${net} -d 192.168.50.0/24 -j ACCEPT`);
  if (o.flannel === false) return [...nat, 'COMMIT', ...filter, 'COMMIT', ''].join('\n');
  // flannel
  if (o.oldUntagged) {
    nat.push(`-A POSTROUTING -s ${net} -d ${net} -j RETURN`);
    nat.push(`-A POSTROUTING -s ${net} ! -d 224.0.0.0/4 -j MASQUERADE --random-fully`);
    nat.push(`-A POSTROUTING ! -s ${net} -d ${sub} -j RETURN`);
    nat.push(`-A POSTROUTING ! -s ${net} -d ${net} -j MASQUERADE --random-fully`);
    filter.push(`-A FORWARD -s ${net} -j ACCEPT`, `-A FORWARD -d ${net} -j ACCEPT`);
  } else {
    const c = '-m comment --comment "flanneld masq"';
    nat.push(':FLANNEL-POSTRTG - [0:0]', `-A POSTROUTING ${c} -j FLANNEL-POSTRTG`);
    nat.push(`-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`);
    nat.push(`-A FLANNEL-POSTRTG -s ${sub} -d ${net} ${c} -j RETURN`);
    nat.push(`-A FLANNEL-POSTRTG -s ${net} -d ${sub} ${c} -j RETURN`);
    nat.push(`-A FLANNEL-POSTRTG ! -s ${net} -d ${sub} ${c} -j RETURN`);
    nat.push(`-A FLANNEL-POSTRTG -s ${net} ! -d 224.0.0.0/4 ${c} -j MASQUERADE --random-fully`);
    nat.push(`-A FLANNEL-POSTRTG ! -s ${net} -d ${net} ${c} -j MASQUERADE --random-fully`);
    const f = '-m comment --comment "flanneld forward"';
    filter.push(':FLANNEL-FWD - [0:0]', `-A FORWARD ${f} -j FLANNEL-FWD`);
    filter.push(`-A FLANNEL-FWD -s ${net} ${f} -j ACCEPT`, `-A FLANNEL-FWD -d ${net} ${f} -j ACCEPT`);
  }
  // portmap (shared chains) and the bridge plugin's per-container chains
  nat.push(':CNI-HOSTPORT-DNAT - [0:0]', ':CNI-HOSTPORT-SETMARK - [0:0]', ':CNI-HOSTPORT-MASQ - [0:0]');
  nat.push('-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT');
  nat.push('-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT');
  nat.push('-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ');
  nat.push('-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE');
  nat.push('-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000');
  o.pods.forEach((p, i) => {
    const chain = `CNI-${hex(`cbr0${p.cid}`, 24)}`;
    const cm = `-m comment --comment "name: \\"cbr0\\" id: \\"${p.cid}\\""`;
    nat.push(`:${chain} - [0:0]`, `-A POSTROUTING -s ${p.ip}/32 ${cm} -j ${chain}`);
    nat.push(`-A ${chain} -d ${sub} ${cm} -j ACCEPT`, `-A ${chain} ! -d 224.0.0.0/4 ${cm} -j MASQUERADE`);
    if (i < 2) {
      const dn = `CNI-DN-${hex(`dn${p.cid}`, 21)}`;
      const port = 8080 + i;
      nat.push(`:${dn} - [0:0]`);
      nat.push(
        `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"${p.cid}\\"" -m multiport --dports ${port} -j ${dn}`,
      );
      nat.push(`-A ${dn} -s ${sub} -p tcp -m tcp --dport ${port} -j CNI-HOSTPORT-SETMARK`);
      nat.push(`-A ${dn} -s 127.0.0.1/32 -p tcp -m tcp --dport ${port} -j CNI-HOSTPORT-SETMARK`);
      nat.push(`-A ${dn} -p tcp -m tcp --dport ${port} -j DNAT --to-destination ${p.ip}:80`);
    }
  });
  if (o.podman) {
    const cid = 'f'.repeat(64);
    const dn = `CNI-DN-${hex(`podman${cid}`, 21)}`;
    nat.push(`:${dn} - [0:0]`);
    nat.push(
      `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"podman\\" id: \\"${cid}\\"" -m multiport --dports 9090 -j ${dn}`,
    );
    nat.push(`-A ${dn} -p tcp -m tcp --dport 9090 -j DNAT --to-destination 10.88.0.2:9090`);
  }
  return [...nat, 'COMMIT', ...filter, 'COMMIT', ''].join('\n');
}

export function ipv6Rules(): string {
  const net = 'fd00:10:244::/56';
  const sub = 'fd00:10:244:1::/64';
  const c = '-m comment --comment "flanneld masq"';
  const f = '-m comment --comment "flanneld forward"';
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':FLANNEL-POSTRTG - [0:0]',
    `-A POSTROUTING ${c} -j FLANNEL-POSTRTG`,
    `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${sub} -d ${net} ${c} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} ! -d ff00::/8 ${c} -j MASQUERADE --random-fully`,
    '-A POSTROUTING -s fd00:99::/64 -j MASQUERADE',
    'COMMIT',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':FLANNEL-FWD - [0:0]',
    `-A FORWARD ${f} -j FLANNEL-FWD`,
    `-A FLANNEL-FWD -s ${net} ${f} -j ACCEPT`,
    `-A FLANNEL-FWD -d ${net} ${f} -j ACCEPT`,
    '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
    'COMMIT',
    '',
  ].join('\n');
}

export function nftRules(net: string, sub: string): string {
  return `table ip flannel-ipv4 {
  comment "rules for flannel-ipv4"
  chain postrtg {
    type nat hook postrouting priority srcnat; policy accept;
    meta mark & 0x00004000 == 0x00004000 return
    ip saddr ${sub} ip daddr ${net} return
    ip saddr ${net} ip daddr != 224.0.0.0/4 masquerade fully-random
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip saddr ${net} accept
    ip daddr ${net} accept
  }
}
table inet site-filter {
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport 22 accept
  }
}
`;
}

export function createFlannelNode(o: FlannelNodeOptions): FlannelNode {
  const backend = o.backend ?? 'nft';
  const n = o.pods ?? 3;
  const big = o.big ?? n > 250;
  const network = big ? '10.0.0.0/14' : '10.244.0.0/16';
  const subnet = big ? '10.0.4.0/22' : '10.244.1.0/24';
  const gw = big ? '10.0.4.1' : '10.244.1.1';
  const root = o.root;
  fs.mkdirSync(root, { recursive: true });
  if (o.netnsMount) mountNetnsDir(root, o.netnsMount);
  sh('ip', ['netns', 'add', o.ns]);
  const node: FlannelNode = { ns: o.ns, nsPath: `/run/netns/${o.ns}`, root, pods: [], network, subnet };
  const ipb = (lines: string[]) => inNs(o.ns, 'ip', ['-batch', '-'], lines.join('\n') + '\n');

  // links: uplink pair, cni0, flannel.1, a foreign bridge
  ipb([
    'link set lo up',
    'link add eth0 type veth peer name eth0-peer',
    'link set eth0 up',
    'link set eth0-peer up',
    'addr add 192.168.1.11/24 dev eth0',
    'link add cni0 type bridge',
    'link set cni0 up',
    `addr add ${gw}/${subnet.split('/')[1]} dev cni0`,
    'link add flannel.1 type vxlan id 1 local 192.168.1.11 dev eth0 dstport 8472 nolearning',
    'link set flannel.1 mtu 1450',
    'link set flannel.1 up',
    `addr add ${subnet.split('/')[0]}/32 dev flannel.1`,
    'link add docker0 type bridge',
    'link set docker0 up',
    'addr add 172.17.0.1/16 dev docker0',
    'link add site-br type bridge',
    'link set site-br up',
    // a veth attached to someone else's bridge must survive
    'link add vethsite type veth peer name vethsite-p',
    'link set vethsite master docker0',
    'link set vethsite up',
  ]);
  if (o.flannel === false) {
    ipb([
      'link delete cni0',
      'link delete flannel.1',
      'route add 192.168.50.0/24 via 192.168.1.1 dev eth0',
      'route add default via 192.168.1.1 dev eth0',
    ]);
    inNs(
      o.ns,
      backend === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore',
      ['--noflush'],
      ipv4Rules({ pods: [], network, subnet, oldUntagged: false, podman: false, foreignRules: o.foreignRules ?? 0, flannel: false }),
    );
    inNs(o.ns, 'nft', ['-f', '-'], nftRules(network, subnet).replace(/^table ip flannel-ipv4 \{[\s\S]*?\n\}\n/, ''));
    write(root, 'etc/hosts', '127.0.0.1 localhost\n');
    write(root, 'etc/cni/net.d/README.site', 'site notes: not a CNI config\n');
    fs.mkdirSync(path.join(root, 'run/netns'), { recursive: true });
    writeShims(root);
    return node;
  }
  if (o.ipv6 !== false) ipb(['addr add fd00:10:244:1::1/64 dev cni0 nodad']);

  // pods: a netns file per pod under <root>/run/netns, a veth on cni0 whose peer is eth0 inside it
  const netnsDir = path.join(root, 'run/netns');
  fs.mkdirSync(netnsDir, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const cid = hex(`${o.ns}-pod-${i}`, 64);
    const uuid = hex(`uuid-${o.ns}-${i}`, 32);
    const name = `cni-${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20, 32)}`;
    const file = path.join(netnsDir, name);
    fs.writeFileSync(file, '');
    sh('unshare', [`--net=${file}`, 'true']);
    const veth = `veth${hex(cid, 8)}`;
    lines.push(`link add ${veth} type veth peer name eth0 netns ${file}`, `link set ${veth} master cni0`, `link set ${veth} up`);
    node.pods.push({ cid, ip: podIp(i, big), veth, netns: name });
  }
  if (lines.length) ipb(lines);

  // routes: vxlan route to another node, host-gw route via the uplink, the site's own route
  ipb([
    big ? 'route add 10.0.8.0/22 via 10.0.8.0 dev flannel.1 onlink' : 'route add 10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink',
    big ? 'route add 10.0.12.0/22 via 192.168.1.12 dev eth0' : 'route add 10.244.2.0/24 via 192.168.1.12 dev eth0',
    'route add 192.168.50.0/24 via 192.168.1.1 dev eth0',
    'route add default via 192.168.1.1 dev eth0',
  ]);
  if (o.ipv6 !== false) {
    ipb([
      'addr add fd00:1::11/64 dev eth0 nodad',
      'route add fd00:10:244:2::/64 via fd00:1::12 dev eth0',
      'route add fd00:77::/64 via fd00:1::1 dev eth0',
    ]);
  }

  // firewall
  const restore = backend === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore';
  inNs(
    o.ns,
    restore,
    ['--noflush'],
    ipv4Rules({
      pods: node.pods,
      network,
      subnet,
      oldUntagged: o.oldUntagged ?? false,
      podman: o.podmanConfig ?? false,
      foreignRules: o.foreignRules ?? 0,
    }),
  );
  if (o.ipv6 !== false) inNs(o.ns, backend === 'nft' ? 'ip6tables-nft-restore' : 'ip6tables-legacy-restore', ['--noflush'], ipv6Rules());
  if (o.nftTable !== false) inNs(o.ns, 'nft', ['-f', '-'], nftRules(network, subnet));

  // files
  write(root, 'etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST);
  write(root, 'etc/cni/net.d/README.site', 'site notes: not a CNI config\n');
  if (o.podmanConfig) write(root, 'etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
  write(
    root,
    'run/flannel/subnet.env',
    `FLANNEL_NETWORK=${network}\nFLANNEL_SUBNET=${gw}/${subnet.split('/')[1]}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n` +
      (o.ipv6 !== false ? 'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\n' : ''),
  );
  fs.mkdirSync(path.join(root, 'var/lib/cni/flannel'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(root, 'var/lib/cni/networks/cbr0'), { recursive: true });
  fs.mkdirSync(path.join(root, 'var/lib/cni/results'), { recursive: true });
  for (const p of node.pods) {
    write(
      root,
      `var/lib/cni/flannel/${p.cid}`,
      JSON.stringify({
        cniVersion: '0.3.1',
        hairpinMode: true,
        ipMasq: false,
        ipam: { ranges: [[{ subnet }]], routes: [{ dst: network }], type: 'host-local' },
        isDefaultGateway: true,
        isGateway: true,
        mtu: 1450,
        name: 'cbr0',
        type: 'bridge',
      }),
      0o600,
    );
    write(root, `var/lib/cni/networks/cbr0/${p.ip}`, `${p.cid}\r\neth0`, 0o600);
    write(
      root,
      `var/lib/cni/results/cbr0-${p.cid}-eth0`,
      JSON.stringify({
        kind: 'cniCacheV1',
        containerId: p.cid,
        config: 'e30=',
        ifName: 'eth0',
        networkName: 'cbr0',
        netns: `/var/run/netns/${p.netns}`,
        result: { cniVersion: '0.3.1', ips: [{ address: `${p.ip}/${subnet.split('/')[1]}`, gateway: gw }] },
      }),
      0o600,
    );
  }
  if (n) write(root, 'var/lib/cni/networks/cbr0/last_reserved_ip.0', node.pods[n - 1]!.ip, 0o600);
  write(root, 'var/lib/cni/networks/cbr0/lock', '', 0o600);
  // someone else's IPAM and cache stay
  write(root, 'var/lib/cni/networks/podman/10.88.0.2', `${'f'.repeat(64)}\r\neth0`, 0o600);
  write(root, `var/lib/cni/results/podman-${'f'.repeat(64)}-eth0`, '{"kind":"cniCacheV1"}', 0o600);
  write(root, 'etc/hosts', '127.0.0.1 localhost\n');
  writeShims(root);
  return node;
}

/** kubelet and containerd are running; the shims keep their state beside the root, not in it. */
function writeShims(root: string) {
  const shim = shimDir(root);
  write(shim, 'units/kubelet.service', 'active\n');
  write(shim, 'units/containerd.service', 'active\n');
  write(shim, 'kubeconfig', 'apiVersion: v1\nkind: Config\n');
  write(shim, 'calls.log', '');
}

/** Where the recording shims keep unit states, the kubeconfig and their call log: beside the root, not in it. */
export const shimDir = (root: string) => path.join(path.dirname(root), 'shim');

export function destroyFlannelNode(node: { ns: string; root: string }): void {
  const netnsDir = path.join(node.root, 'run/netns');
  for (const f of fs.existsSync(netnsDir) ? fs.readdirSync(netnsDir) : []) {
    try {
      sh('umount', ['--lazy', path.join(netnsDir, f)]);
    } catch {
      /* not mounted */
    }
  }
  // What netnsMount mounted, and anything a test mounted below the root.
  for (const m of mountsUnder(node.root)) {
    try {
      sh('umount', ['--lazy', m]);
    } catch {
      /* gone with the one above */
    }
  }
  try {
    sh('ip', ['netns', 'delete', node.ns]);
  } catch {
    /* already gone */
  }
  // The root's parent is the node's own scratch directory (scratch() makes it with mkdtemp); a root
  // made directly in a shared temp directory must never take that directory with it.
  const parent = path.resolve(path.dirname(node.root));
  const shared = ['/', '/tmp', '/var/tmp', os.tmpdir(), process.env.TMPDIR].filter(Boolean).map((d) => path.resolve(d!));
  if (shared.includes(parent))
    throw new Error(`destroyFlannelNode: refusing to remove ${parent}: the node's root must sit in a directory of its own`);
  fs.rmSync(parent, { recursive: true, force: true });
}
