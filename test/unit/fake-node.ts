// Fake nodes for the unit tests: a typical dirty Flannel node (vxlan + host-gw routes, pods on cni0,
// rules on iptables-nft, a native nftables table, IPAM/result files, mounted pod netns files) and
// everything someone else owns next to it (docker0 and its veth, site routes and rules, podman's
// files), so tests can check both that Flannel's state goes and that nothing else does.
import { createHash } from 'node:crypto';
import { FakeHost, type FakeHostInit } from '../../src/host/fake.js';
import { FLANNEL_CONFLIST, PODMAN_CONFLIST, ipv4Rules, ipv6Rules } from '../helpers/flannel-node.js';

const hex = (s: string, n: number) => createHash('sha512').update(s).digest('hex').slice(0, n);

export interface Pod {
  cid: string;
  ip: string;
  veth: string;
  netns: string;
}

export interface DirtyNodeOptions extends FakeHostInit {
  pods?: number;
  /** Flannel rules from before the comments, straight in POSTROUTING/FORWARD. */
  oldUntagged?: boolean;
  /** A podman bridge config that also uses portmap, so CNI-HOSTPORT-* are shared. */
  podman?: boolean;
  ipv6?: boolean;
  /** Put the iptables rules on the legacy backend instead of nft. */
  legacy?: boolean;
  nftTable?: boolean;
}

export const NETWORK = '10.244.0.0/16';
export const SUBNET = '10.244.1.0/24';

export function podsFor(n: number): Pod[] {
  return Array.from({ length: n }, (_, i) => {
    const cid = hex(`pod-${i}`, 64);
    const u = hex(`uuid-${i}`, 32);
    return {
      cid,
      ip: `10.244.1.${i + 2}`,
      veth: `veth${hex(cid, 8)}`,
      netns: `cni-${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20, 32)}`,
    };
  });
}

/** A node with no Flannel state: uplink, docker0 with a container, site routes, kube-proxy and site rules. */
export function foreignNode(init: FakeHostInit = {}): FakeHost {
  const h = new FakeHost(init);
  h.addLink({ ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN' })
    .addLink({ ifname: 'eth0' })
    .addLink({ ifname: 'docker0', linkinfo: { info_kind: 'bridge' } })
    .addLink({ ifname: 'site-br', linkinfo: { info_kind: 'bridge' } })
    // a veth on someone else's bridge, with its peer in this namespace
    .addLink({ ifname: 'vethsite', master: 'docker0', link: 'vethsite-p', linkinfo: { info_kind: 'veth' } })
    .addLink({ ifname: 'vethsite-p', link: 'vethsite', linkinfo: { info_kind: 'veth' } })
    .addAddr('eth0', '192.168.1.11/24')
    .addAddr('docker0', '172.17.0.1/16')
    .addRoute(4, { dst: 'default', gateway: '192.168.1.1', dev: 'eth0', protocol: 'dhcp', metric: 100 })
    .addRoute(4, { dst: '172.17.0.0/16', dev: 'docker0', protocol: 'kernel', scope: 'link', prefsrc: '172.17.0.1' })
    .addRoute(4, { dst: '192.168.1.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.11', metric: 100 })
    .addRoute(4, { dst: '192.168.50.0/24', gateway: '192.168.1.1', dev: 'eth0' })
    .addRoute(6, { dst: 'fd00:1::/64', dev: 'eth0', protocol: 'kernel', metric: 256, pref: 'medium' })
    .addRoute(6, { dst: 'fd00:77::/64', gateway: 'fd00:1::1', dev: 'eth0', metric: 1024, pref: 'medium' })
    .addRoute(6, { dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel', metric: 256, pref: 'medium' })
    .addNftTable('inet', 'site-filter')
    .writeFile('/etc/hosts', '127.0.0.1 localhost\n')
    .writeFile('/etc/cni/net.d/README.site', 'site notes: not a CNI config\n')
    .writeFile('/var/lib/cni/networks/podman/10.88.0.2', `${'f'.repeat(64)}\r\neth0`, 0o600)
    .writeFile(`/var/lib/cni/results/podman-${'f'.repeat(64)}-eth0`, '{"kind":"cniCacheV1"}', 0o600);
  h.units.set('kubelet.service', 'active');
  h.units.set('containerd.service', 'active');
  h.setIptables(
    'iptables-nft',
    [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':SITE-FW - [0:0]',
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A FORWARD -j SITE-FW',
      '-A SITE-FW -s 10.244.0.0/16 -d 192.168.50.0/24 -j DROP',
      'COMMIT',
      '',
    ].join('\n'),
  );
  return h;
}

/** A typical node Flannel (vxlan, with one host-gw route) has left behind, with `pods` pods still wired up. */
export function dirtyFlannelNode(o: DirtyNodeOptions = {}): { host: FakeHost; pods: Pod[] } {
  const h = new FakeHost(o);
  const pods = podsFor(o.pods ?? 2);
  const ipv6 = o.ipv6 ?? true;
  const v4 = o.legacy ? 'iptables-legacy' : 'iptables-nft';
  const v6 = o.legacy ? 'ip6tables-legacy' : 'ip6tables-nft';

  h.addLink({ ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN' })
    .addLink({ ifname: 'eth0' })
    .addLink({
      ifname: 'flannel.1',
      mtu: 1450,
      linkinfo: { info_kind: 'vxlan', info_data: { id: 1, local: '192.168.1.11', link: 'eth0', port: 8472 } },
    })
    .addLink({ ifname: 'cni0', mtu: 1450, linkinfo: { info_kind: 'bridge' } })
    .addLink({ ifname: 'docker0', linkinfo: { info_kind: 'bridge' } })
    .addLink({ ifname: 'site-br', linkinfo: { info_kind: 'bridge' } })
    .addLink({ ifname: 'vethsite', master: 'docker0', link: 'vethsite-p', linkinfo: { info_kind: 'veth' } })
    .addLink({ ifname: 'vethsite-p', link: 'vethsite', linkinfo: { info_kind: 'veth' } });
  pods.forEach((p, i) => h.addLink({ ifname: p.veth, mtu: 1450, master: 'cni0', link_netnsid: i, linkinfo: { info_kind: 'veth' } }));
  h.addAddr('eth0', '192.168.1.11/24')
    .addAddr('cni0', '10.244.1.1/24')
    .addAddr('flannel.1', '10.244.1.0/32')
    .addAddr('docker0', '172.17.0.1/16');

  h.addRoute(4, { dst: 'default', gateway: '192.168.1.1', dev: 'eth0', protocol: 'dhcp', metric: 100 })
    .addRoute(4, { dst: '10.244.0.0/24', gateway: '10.244.0.0', dev: 'flannel.1', flags: ['onlink'] })
    .addRoute(4, { dst: '10.244.1.0/24', dev: 'cni0', protocol: 'kernel', scope: 'link', prefsrc: '10.244.1.1' })
    .addRoute(4, { dst: '10.244.2.0/24', gateway: '192.168.1.12', dev: 'eth0' })
    .addRoute(4, { dst: '172.17.0.0/16', dev: 'docker0', protocol: 'kernel', scope: 'link', prefsrc: '172.17.0.1' })
    .addRoute(4, { dst: '192.168.1.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.11', metric: 100 })
    .addRoute(4, { dst: '192.168.50.0/24', gateway: '192.168.1.1', dev: 'eth0' });
  if (ipv6) {
    h.addAddr('cni0', 'fd00:10:244:1::1/64').addAddr('eth0', 'fd00:1::11/64');
    h.addRoute(6, { dst: 'fd00:1::/64', dev: 'eth0', protocol: 'kernel', metric: 256, pref: 'medium' })
      .addRoute(6, { dst: 'fd00:10:244:1::/64', dev: 'cni0', protocol: 'kernel', metric: 256, pref: 'medium' })
      .addRoute(6, { dst: 'fd00:10:244:2::/64', gateway: 'fd00:1::12', dev: 'eth0', metric: 1024, pref: 'medium' })
      .addRoute(6, { dst: 'fd00:77::/64', gateway: 'fd00:1::1', dev: 'eth0', metric: 1024, pref: 'medium' })
      .addRoute(6, { dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel', metric: 256, pref: 'medium' });
  }

  h.setIptables(
    v4,
    ipv4Rules({ pods, network: NETWORK, subnet: SUBNET, oldUntagged: o.oldUntagged ?? false, podman: o.podman ?? false, foreignRules: 2 }),
  );
  if (ipv6) h.setIptables(v6, ipv6Rules());
  if (o.nftTable ?? true) h.addNftTable('ip', 'flannel-ipv4').addNftTable('ip6', 'flannel-ipv6');
  h.addNftTable('inet', 'site-filter');

  h.writeFile('/etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST)
    .writeFile('/etc/cni/net.d/README.site', 'site notes: not a CNI config\n')
    .writeFile(
      '/run/flannel/subnet.env',
      `FLANNEL_NETWORK=${NETWORK}\nFLANNEL_SUBNET=10.244.1.1/24\n` +
        (ipv6 ? 'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\n' : '') +
        'FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    )
    .mkdir('/var/lib/cni/flannel', 0o700)
    .mkdir('/var/lib/cni/results', 0o700);
  if (o.podman) h.writeFile('/etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
  for (const p of pods) {
    h.writeFile(`/var/lib/cni/flannel/${p.cid}`, '{"name":"cbr0","type":"bridge"}', 0o600)
      .writeFile(`/var/lib/cni/networks/cbr0/${p.ip}`, `${p.cid}\r\neth0`, 0o600)
      .writeFile(`/var/lib/cni/results/cbr0-${p.cid}-eth0`, '{"kind":"cniCacheV1"}', 0o600)
      .addNetns(p.netns);
  }
  if (pods.length) h.writeFile('/var/lib/cni/networks/cbr0/last_reserved_ip.0', pods[pods.length - 1]!.ip, 0o600);
  h.writeFile('/var/lib/cni/networks/cbr0/lock', '', 0o600)
    .writeFile('/var/lib/cni/networks/podman/10.88.0.2', `${'f'.repeat(64)}\r\neth0`, 0o600)
    .writeFile(`/var/lib/cni/results/podman-${'f'.repeat(64)}-eth0`, '{"kind":"cniCacheV1"}', 0o600)
    .writeFile('/etc/hosts', '127.0.0.1 localhost\n');
  h.units.set('kubelet.service', 'active');
  h.units.set('containerd.service', 'active');
  return { host: h, pods };
}
