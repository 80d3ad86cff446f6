import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ProfileFacts } from '../../src/inspect.js';
import {
  classifyRoutes,
  firewallDeletions,
  keptLinks,
  missingFromDump,
  undoScript,
  ownedLinks,
  ownedRoutes,
  restoreScript,
  routeDeleteLine,
  type FamilyRoute,
  type RouteContext,
} from '../../src/ownership.js';
import { parseCniConfig } from '../../src/parse/conflist.js';
import { parseLinks, parseRoutes, type Link } from '../../src/parse/iproute.js';
import { parseIptablesSave } from '../../src/parse/iptables.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { networkOf, parsePrefix } from '../../src/util/cidr.js';
import { PODMAN_CONFLIST } from '../helpers/flannel-node.js';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '../../fixtures/flannel', name), 'utf8');
const flannel = loadProfiles().find((p) => p.name === 'flannel')!;
const calico = loadProfiles().find((p) => p.name === 'calico')!;
const net = (s: string) => networkOf(parsePrefix(s)!);
const FLANNEL_CONF = parseCniConfig('/etc/cni/net.d/10-flannel.conflist', fixture('10-flannel.conflist'));
const PODMAN_CONF = parseCniConfig('/etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
const CID1 = '09a5a091440cee62f5f1f87b9c0b64e4c295443d3475462c9ac0cfec0e6c05b7';
const CID2 = '626aefe4db8ef6aafb5f96cae207a674b56b972871c8c3358ca07c6fcd82a055';

/** Facts as takeSnapshot finds them on the fixture node (dual stack, config present). */
function facts(over: Partial<ProfileFacts> = {}): ProfileFacts[] {
  return [
    {
      profile: flannel,
      configs: [FLANNEL_CONF],
      extraFiles: [],
      networks: ['cbr0'],
      bridges: ['cni0'],
      podNetworks: [net('10.244.0.0/16'), net('fd00:10:244::/56')],
      nodeSubnets: [net('10.244.1.0/24'), net('fd00:10:244:1::/64')],
      ...over,
    },
  ];
}

const link = (ifname: string, more: Partial<Link> = {}): Link => ({ ifindex: 0, ifname, ...more });
const brief = (o: { name: string; why: string; isPort: boolean }) => ({ name: o.name, why: o.why, isPort: o.isPort });

describe('ownedLinks', () => {
  it("takes Flannel's devices by name and the veths on cni0, from the fixture node", () => {
    expect(ownedLinks(parseLinks(fixture('ip-link.json')), facts()).map(brief)).toEqual([
      { name: 'flannel.1', why: 'name', isPort: false },
      { name: 'cni0', why: 'name', isPort: false },
      { name: 'veth3ac59df3', why: 'bridge port of cni0', isPort: true },
      { name: 'veth06cd40e8', why: 'bridge port of cni0', isPort: true },
    ]);
  });

  it('when the config names another bridge, also takes the ports of a leftover cni0, so no pod veth is orphaned', () => {
    const links = [
      link('mybr0', { linkinfo: { info_kind: 'bridge' } }),
      link('cni0', { linkinfo: { info_kind: 'bridge' } }),
      link('vethaaaa1111', { master: 'mybr0', linkinfo: { info_kind: 'veth' } }),
      link('vethbbbb2222', { master: 'cni0', linkinfo: { info_kind: 'veth' } }),
      link('vethsite', { master: 'docker0', linkinfo: { info_kind: 'veth' } }),
    ];
    expect(ownedLinks(links, facts({ bridges: ['mybr0'] })).map((o) => `${o.name}:${o.why}`)).toEqual([
      'mybr0:name',
      'cni0:name',
      'vethaaaa1111:bridge port of mybr0',
      'vethbbbb2222:bridge port of cni0',
    ]);
  });

  it('matches flannel.<vni> and flannel-v6.<vni>, and nothing that merely looks alike', () => {
    const links = ['flannel.4096', 'flannel-v6.4096', 'flannel-wg', 'flannel.x', 'flannel.1.100', 'myflannel.1', 'flannel'].map((n) =>
      link(n),
    );
    expect(ownedLinks(links, facts()).map((o) => `${o.name}:${o.why}`)).toEqual([
      'flannel.4096:pattern',
      'flannel-v6.4096:pattern',
      'flannel-wg:name',
    ]);
  });

  it('leaves veths on other bridges; a cni0 with a port that is not a pod veth stays, with its ports', () => {
    const links = [
      link('cni0', { linkinfo: { info_kind: 'bridge' } }),
      link('docker0', { linkinfo: { info_kind: 'bridge' } }),
      link('vethdocker', { master: 'docker0', linkinfo: { info_kind: 'veth' }, link_netnsid: 1 }),
      link('vethpod', { master: 'cni0', linkinfo: { info_kind: 'veth' }, link_netnsid: 0 }),
    ];
    expect(ownedLinks(links, facts()).map((o) => o.name)).toEqual(['cni0', 'vethpod']);
    // A site's vxlan enslaved to it, or a veth whose peer is in this namespace (a lab's): cni0 carries more than pods.
    for (const port of [
      link('site-vx', { master: 'cni0', linkinfo: { info_kind: 'vxlan' } }),
      link('vethsite', { master: 'cni0', linkinfo: { info_kind: 'veth' }, link: 'vethsite-p' }),
    ]) {
      const all = [...links, port, link('vethsite-p', { linkinfo: { info_kind: 'veth' }, link: 'vethsite', master: 'docker0' })];
      expect(ownedLinks(all, facts()).map((o) => o.name)).toEqual([]);
      expect(keptLinks(all, facts())).toEqual([
        {
          name: 'cni0',
          why:
            port.ifname === 'site-vx'
              ? 'it has the port site-vx, which is not a pod veth'
              : "it has the port vethsite, a veth whose peer vethsite-p is a port of docker0: not a pod's",
        },
      ]);
    }
  });

  it("keeps a veth with the CNI's name whose peer, in this namespace, carries another network: deleting it would take the peer", () => {
    const links = [
      link('flannel.7', { linkinfo: { info_kind: 'veth' }, link: 'appx' }),
      link('appx', {
        linkinfo: { info_kind: 'veth' },
        link: 'flannel.7',
        addr_info: [{ family: 'inet', local: '172.29.0.1', prefixlen: 24 }],
      }),
      link('flannel.8', { linkinfo: { info_kind: 'veth' }, link: 'bare' }),
      link('bare', {
        linkinfo: { info_kind: 'veth' },
        link: 'flannel.8',
        addr_info: [{ family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }],
      }),
      link('flannel-wg', { linkinfo: { info_kind: 'wireguard' } }),
    ];
    expect(ownedLinks(links, facts()).map((o) => o.name)).toEqual(['flannel.8', 'flannel-wg']);
    expect(keptLinks(links, facts())).toEqual([{ name: 'flannel.7', why: "it is a veth whose peer appx carries 172.29.0.1: not a pod's" }]);
  });

  it('follows the bridge the config delegates to', () => {
    const links = [
      link('kube-bridge', { linkinfo: { info_kind: 'bridge' } }),
      link('vethk', { master: 'kube-bridge', linkinfo: { info_kind: 'veth' } }),
    ];
    expect(ownedLinks(links, facts({ bridges: ['kube-bridge'] })).map(brief)).toEqual([
      { name: 'kube-bridge', why: 'name', isPort: false },
      { name: 'vethk', why: 'bridge port of kube-bridge', isPort: true },
    ]);
  });

  it('owns nothing when no CNI is selected', () => {
    expect(ownedLinks(parseLinks(fixture('ip-link.json')), [])).toEqual([]);
  });

  it('decides once per listing of the links (the phases of a plan share it), and anew for a new listing', () => {
    const f = facts();
    const links = parseLinks(fixture('ip-link.json'));
    const owned = ownedLinks(links, f);
    expect(ownedLinks(links, f)).toBe(owned);
    expect(Object.isFrozen(owned)).toBe(true);
    expect(keptLinks(links, f)).toBe(keptLinks(links, f));
    // What a run reads after a change: one veth gone, the answer without it.
    const after = links.filter((l) => l.ifname !== 'veth06cd40e8');
    expect(ownedLinks(after, f).map((l) => l.name)).toEqual(['flannel.1', 'cni0', 'veth3ac59df3']);
    expect(ownedLinks(links, facts()).map(brief)).toEqual(owned.map(brief));
  });
});

describe('ownedRoutes', () => {
  const v4 = parseRoutes(fixture('ip-route.json')).map((r) => ({ ...r, family: 4 as const }));
  const extra: FamilyRoute[] = [
    { dst: '192.168.50.0/24', gateway: '192.168.1.1', dev: 'eth0', family: 4 },
    { dst: '10.244.9.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', family: 4 },
    { dst: '10.0.0.0/8', gateway: '192.168.1.254', dev: 'eth0', family: 4 },
    { dst: 'fd00:1::/64', dev: 'eth0', protocol: 'kernel', scope: 'link', metric: 256, family: 6 },
    { dst: 'fd00:10:244:2::/64', gateway: 'fd00:1::12', dev: 'eth0', metric: 1024, family: 6 },
    { dst: 'fd00:77::/64', gateway: 'fd00:1::1', dev: 'eth0', metric: 1024, family: 6 },
    { dst: 'default', gateway: 'fe80::1', dev: 'eth0', protocol: 'ra', metric: 1024, family: 6 },
  ];
  const devices = new Set(['flannel.1', 'cni0', 'veth3ac59df3', 'veth06cd40e8']);
  const dsts = (rs: FamilyRoute[]) => rs.map((r) => `${r.dst} ${r.dev}`);
  const rctx = (f: ProfileFacts[], owned: Set<string>, dying: Set<string>) => ({
    facts: f,
    ownedDevices: owned,
    dyingDevices: dying,
    cniDevices: owned,
  });

  it('owns host-gw routes via the uplink into the pod network, and leaves routes through dying devices to go with them', () => {
    expect(dsts(ownedRoutes([...v4, ...extra], rctx(facts(), devices, devices)))).toEqual([
      '10.244.2.0/24 eth0',
      'fd00:10:244:2::/64 eth0',
    ]);
  });

  it("owns routes through Flannel's devices too when the interfaces phase does not run, but not the connected routes of their addresses", () => {
    expect(dsts(ownedRoutes([...v4, ...extra], rctx(facts(), devices, new Set())))).toEqual([
      '10.244.0.0/24 flannel.1',
      '10.244.2.0/24 eth0',
      'fd00:10:244:2::/64 eth0',
    ]);
  });

  it('never owns the default route, kernel routes, site routes or routes wider than the pod network', () => {
    const owned = new Set(dsts(ownedRoutes([...v4, ...extra], rctx(facts(), devices, new Set()))));
    for (const keep of [
      'default eth0',
      '192.168.1.0/24 eth0',
      '192.168.50.0/24 eth0',
      '10.244.9.0/24 eth0',
      '10.0.0.0/8 eth0',
      'fd00:77::/64 eth0',
    ]) {
      expect(owned.has(keep), keep).toBe(false);
    }
  });

  it('owns no host-gw route when the pod network is unknown', () => {
    expect(ownedRoutes([...v4, ...extra], rctx(facts({ podNetworks: [] }), devices, devices))).toEqual([]);
  });

  it('writes one exact ip -batch line per route', () => {
    expect(routeDeleteLine({ dst: '10.244.2.0/24', gateway: '192.168.1.12', dev: 'eth0', family: 4 })).toBe(
      'route delete 10.244.2.0/24 via 192.168.1.12 dev eth0',
    );
    expect(routeDeleteLine({ dst: 'fd00:10:244:2::/64', gateway: 'fd00:1::12', dev: 'eth0', metric: 1024, family: 6 })).toBe(
      'route delete fd00:10:244:2::/64 via fd00:1::12 dev eth0 metric 1024',
    );
    expect(routeDeleteLine({ type: 'blackhole', dst: '10.244.3.0/24', table: 'main', metric: 0, family: 4 })).toBe(
      'route delete blackhole 10.244.3.0/24 metric 0',
    );
    expect(routeDeleteLine({ type: 'unicast', dst: '10.244.3.0/24', dev: 'eth0', table: '100', family: 4 })).toBe(
      'route delete 10.244.3.0/24 dev eth0 table 100',
    );
  });
});

const DNAT_CBR0 = `-D CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"${CID2}\\"" -m multiport --dports 8080 -j CNI-DN-49c66fde404ee0e926cc6`;
const POD_JUMPS_V4 = [
  `-D POSTROUTING -s 10.244.1.2/32 -m comment --comment "name: \\"cbr0\\" id: \\"${CID1}\\"" -j CNI-a723e4a1cfcd14e4ffa14659`,
  `-D POSTROUTING -s 10.244.1.3/32 -m comment --comment "name: \\"cbr0\\" id: \\"${CID2}\\"" -j CNI-49c66fde404ee0e926cc64ea`,
];
const FILTER_SECTION = [
  '*filter',
  '-D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-F FLANNEL-FWD',
  '-X FLANNEL-FWD',
  'COMMIT',
];
const chainOps = (chains: string[]) => [...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`)];

describe('firewallDeletions + restoreScript', () => {
  const v4 = parseIptablesSave(fixture('iptables-save.v4.txt'));

  it("removes Flannel's chains, the pods' CNI chains and, when no config keeps using portmap, the CNI-HOSTPORT chains", () => {
    const script = restoreScript(firewallDeletions(v4, { facts: facts(), remainingConfigs: [], family: 4 }));
    expect(script).toBe(
      [
        ...FILTER_SECTION,
        '*nat',
        '-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
        '-D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
        '-D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        ...POD_JUMPS_V4,
        ...chainOps([
          'CNI-49c66fde404ee0e926cc64ea',
          'CNI-DN-49c66fde404ee0e926cc6',
          'CNI-HOSTPORT-DNAT',
          'CNI-HOSTPORT-MASQ',
          'CNI-HOSTPORT-SETMARK',
          'CNI-a723e4a1cfcd14e4ffa14659',
          'FLANNEL-POSTRTG',
        ]),
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it("keeps the shared CNI-HOSTPORT chains when a remaining config uses portmap, removing only cbr0's dnat entry and its CNI-DN chain", () => {
    const script = restoreScript(firewallDeletions(v4, { facts: facts(), remainingConfigs: [PODMAN_CONF], family: 4 }));
    expect(script).toBe(
      [
        ...FILTER_SECTION,
        '*nat',
        '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        ...POD_JUMPS_V4,
        DNAT_CBR0,
        ...chainOps(['CNI-49c66fde404ee0e926cc64ea', 'CNI-DN-49c66fde404ee0e926cc6', 'CNI-a723e4a1cfcd14e4ffa14659', 'FLANNEL-POSTRTG']),
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('never touches a KUBE-* chain or rule, nor the site rule that mentions the pod network', () => {
    const all = firewallDeletions(v4, { facts: facts(), remainingConfigs: [], family: 4 });
    const lines = restoreScript(all).split('\n');
    expect(lines.filter((l) => l.includes('KUBE-'))).toEqual([]);
    expect(lines.filter((l) => l.includes('192.168.50.0/24'))).toEqual([]);
  });

  it('does the same on the IPv6 fixture with the IPv6 pod network', () => {
    const v6 = parseIptablesSave(fixture('iptables-save.v6.txt'));
    const script = restoreScript(firewallDeletions(v6, { facts: facts(), remainingConfigs: [], family: 6 }));
    expect(script.split('\n').filter((l) => l.startsWith('-D '))).toEqual([
      '-D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
      '-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
      '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      `-D POSTROUTING -s fd00:10:244:1::2/128 -m comment --comment "name: \\"cbr0\\" id: \\"${CID1}\\"" -j CNI-a723e4a1cfcd14e4ffa14659`,
      `-D POSTROUTING -s fd00:10:244:1::3/128 -m comment --comment "name: \\"cbr0\\" id: \\"${CID2}\\"" -j CNI-49c66fde404ee0e926cc64ea`,
    ]);
    expect(script).not.toContain('fd00:10:244::/56 -d fd00:50::/64');
  });

  it('matches the 6 untagged rules of Flannel < v0.17 and none of the near misses', () => {
    const old = parseIptablesSave(fixture('iptables-save.old-untagged.v4.txt'));
    const tables = firewallDeletions(old, { facts: facts(), remainingConfigs: [PODMAN_CONF], family: 4 });
    expect(restoreScript(tables)).toBe(
      [
        '*nat',
        '-D POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN',
        '-D POSTROUTING -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully',
        '-D POSTROUTING ! -s 10.244.0.0/16 -d 10.244.1.0/24 -j RETURN',
        '-D POSTROUTING ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully',
        DNAT_CBR0,
        '-F CNI-DN-49c66fde404ee0e926cc6',
        '-X CNI-DN-49c66fde404ee0e926cc6',
        'COMMIT',
        '*filter',
        '-D FORWARD -s 10.244.0.0/16 -j ACCEPT',
        '-D FORWARD -d 10.244.0.0/16 -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('does not match untagged shapes for another pod network, and skips {subnet} shapes when the node subnet is unknown', () => {
    const old = parseIptablesSave(fixture('iptables-save.old-untagged.v4.txt'));
    const other = firewallDeletions(old, {
      facts: facts({ podNetworks: [net('10.42.0.0/16')] }),
      remainingConfigs: [PODMAN_CONF],
      family: 4,
    });
    expect(restoreScript(other)).not.toContain('10.244.0.0/16');
    const noSubnet = firewallDeletions(old, { facts: facts({ nodeSubnets: [] }), remainingConfigs: [PODMAN_CONF], family: 4 });
    const lines = restoreScript(noSubnet)
      .split('\n')
      .filter((l) => l.includes('10.244.'));
    expect(lines).toEqual([
      '-D POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN',
      '-D POSTROUTING -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully',
      '-D POSTROUTING ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully',
      '-D FORWARD -s 10.244.0.0/16 -j ACCEPT',
      '-D FORWARD -d 10.244.0.0/16 -j ACCEPT',
    ]);
  });

  it('recognises the "flannel masq" typo comment of v0.17-era releases', () => {
    const dump = parseIptablesSave(
      [
        '*nat',
        ':POSTROUTING ACCEPT [0:0]',
        '-A POSTROUTING -s 10.42.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flannel masq" -j MASQUERADE --random-fully',
        '-A POSTROUTING -m comment --comment "flannel masquerade" -j MASQUERADE',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(firewallDeletions(dump, { facts: facts(), remainingConfigs: [], family: 4 })).toEqual([
      { table: 'nat', deletes: [dump.tables[0]!.rules[0]], chains: [] },
    ]);
  });

  it('leaves the CNI-<hash> chains of another network alone', () => {
    const dump = parseIptablesSave(
      [
        '*nat',
        ':POSTROUTING ACCEPT [0:0]',
        ':CNI-1111111111111111111111aa - [0:0]',
        ':CNI-2222222222222222222222bb - [0:0]',
        '-A POSTROUTING -s 10.88.0.2/32 -m comment --comment "name: \\"podman\\" id: \\"abc\\"" -j CNI-1111111111111111111111aa',
        '-A POSTROUTING -s 10.244.1.2/32 -m comment --comment "name: \\"cbr0\\" id: \\"def\\"" -j CNI-2222222222222222222222bb',
        '-A CNI-1111111111111111111111aa ! -d 224.0.0.0/4 -m comment --comment "name: \\"podman\\" id: \\"abc\\"" -j MASQUERADE',
        '-A CNI-2222222222222222222222bb ! -d 224.0.0.0/4 -m comment --comment "name: \\"cbr0\\" id: \\"def\\"" -j MASQUERADE',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const [t] = firewallDeletions(dump, { facts: facts(), remainingConfigs: [PODMAN_CONF], family: 4 });
    expect(t!.chains).toEqual(['CNI-2222222222222222222222bb']);
    expect(t!.deletes.map((r) => r.target)).toEqual(['CNI-2222222222222222222222bb']);
  });

  it('finds nothing in a dump without Flannel state', () => {
    const dump = parseIptablesSave('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n');
    expect(firewallDeletions(dump, { facts: facts(), remainingConfigs: [], family: 4 })).toEqual([]);
  });
});

describe('restoreScript', () => {
  it('deletes rules first, then flushes every chain, then deletes them, one section per table', () => {
    const tables = [
      {
        table: 'nat',
        deletes: [{ table: 'nat', chain: 'POSTROUTING', spec: '-j A', comments: [], tokens: ['-j', 'A'], target: 'A' }],
        chains: ['A', 'B'],
      },
      { table: 'filter', deletes: [], chains: ['C'] },
    ];
    expect(restoreScript(tables)).toBe('*nat\n-D POSTROUTING -j A\n-F A\n-F B\n-X A\n-X B\nCOMMIT\n*filter\n-F C\n-X C\nCOMMIT\n');
  });
});

describe('route shapes', () => {
  const r = (dst: string, more: Partial<FamilyRoute> = {}): FamilyRoute => ({ dst, family: dst.includes(':') ? 6 : 4, ...more });
  const uplink = [
    r('192.168.1.0/24', { dev: 'eth0', protocol: 'kernel', scope: 'link' }),
    r('default', { gateway: '192.168.1.1', dev: 'eth0' }),
  ];
  const ctx = (f: ProfileFacts[], cni: string[] = []): RouteContext => ({
    facts: f,
    ownedDevices: new Set(),
    dyingDevices: new Set(),
    cniDevices: new Set(cni),
  });
  const owned = (routes: FamilyRoute[], c: RouteContext) => ownedRoutes([...uplink, ...routes], c).map((x) => x.dst);
  const kept = (routes: FamilyRoute[], c: RouteContext) =>
    Object.fromEntries(classifyRoutes([...uplink, ...routes], c).kept.map((k) => [k.route.dst, k.why]));
  const calicoFacts = (over: Partial<ProfileFacts> = {}): ProfileFacts[] => [
    { profile: calico, configs: [], extraFiles: [], networks: [], bridges: [], podNetworks: [], nodeSubnets: [], ...over },
  ];

  it("a Flannel host-gw route is a lease of another node, proto boot, main table, via a gateway on the uplink's network", () => {
    expect(owned([r('10.244.2.0/24', { gateway: '192.168.1.12', dev: 'eth0' })], ctx(facts()))).toEqual(['10.244.2.0/24']);
  });

  it('keeps routes inside the pod network in any other shape, each with why', () => {
    const routes = [
      r('10.244.3.0/24', { gateway: '192.168.1.13', dev: 'eth0', protocol: '17' }),
      r('10.244.4.0/24', { gateway: '192.168.1.14', dev: 'eth0', protocol: 'bird' }),
      r('10.244.5.0/24', { gateway: '192.168.1.15', dev: 'eth0', table: '100' }),
      r('10.244.0.0/18', { gateway: '192.168.1.16', dev: 'eth0' }),
      r('10.244.1.0/24', { gateway: '192.168.1.17', dev: 'eth0' }),
      r('10.244.6.0/24', { gateway: '10.9.9.9', dev: 'eth0' }),
      r('10.244.7.0/24', { gateway: '172.20.0.1', dev: 'cali12345678901' }),
    ];
    expect(owned(routes, ctx(facts(), ['cali12345678901']))).toEqual([]);
    expect(kept(routes, ctx(facts(), ['cali12345678901']))).toEqual({
      '10.244.3.0/24': "proto 17: another routing daemon's route",
      '10.244.4.0/24': "proto bird: another routing daemon's route",
      '10.244.5.0/24': 'in table 100',
      '10.244.0.0/18': '/18 is not a lease (/24)',
      '10.244.1.0/24': "this node's own subnet",
      '10.244.6.0/24': "its gateway is not on the uplink's connected network",
      '10.244.7.0/24': "via cali12345678901, another CNI's device",
    });
  });

  it("with a wide FLANNEL_NETWORK, the site's own route via the uplink gateway is not a lease and stays", () => {
    const wide = facts({ podNetworks: [net('10.0.0.0/8')], nodeSubnets: [net('10.0.1.0/24')] });
    const routes = [r('10.50.0.0/16', { gateway: '192.168.1.1', dev: 'eth0' }), r('10.0.2.0/24', { gateway: '192.168.1.12', dev: 'eth0' })];
    expect(owned(routes, ctx(wide))).toEqual(['10.0.2.0/24']);
  });

  it("without subnet.env the lease length is Flannel's default: /24 (/64), or the network + 2 for small networks", () => {
    const noEnv = (n: string) => facts({ podNetworks: [net(n)], nodeSubnets: [] });
    const routes = [
      r('10.244.2.0/24', { gateway: '192.168.1.12', dev: 'eth0' }),
      r('10.244.8.0/22', { gateway: '192.168.1.12', dev: 'eth0' }),
      r('fd00:10:244:2::/64', { gateway: 'fd00:1::12', dev: 'eth0' }),
      r('fd00:1::/64', { dev: 'eth0', protocol: 'kernel', scope: 'link' }),
    ];
    expect(owned(routes, ctx([...noEnv('10.244.0.0/16'), ...noEnv('fd00:10:244::/56')]))).toEqual(['10.244.2.0/24', 'fd00:10:244:2::/64']);
    expect(owned([r('10.1.0.128/25', { gateway: '192.168.1.12', dev: 'eth0' })], ctx(noEnv('10.1.0.0/23')))).toEqual(['10.1.0.128/25']);
  });

  const calicoRoutes = [
    r('10.244.64.0/26', { type: 'blackhole', protocol: 'bird' }),
    r('10.244.65.0/26', { type: 'blackhole', protocol: '80' }),
    r('10.244.128.0/26', { gateway: '192.168.1.12', dev: 'eth0', protocol: 'bird' }),
    r('10.244.129.0/26', { gateway: '192.168.1.12', dev: 'eth0', protocol: '80' }),
    r('10.244.192.0/26', { gateway: '10.244.192.0', dev: 'vxlan.calico', protocol: '80', flags: ['onlink'] }),
  ];

  it("Calico's routes are blackholes for its blocks and block routes via a peer on the uplink, proto bird or 80", () => {
    expect(owned(calicoRoutes, ctx(calicoFacts(), ['vxlan.calico']))).toEqual([
      '10.244.64.0/26',
      '10.244.65.0/26',
      '10.244.128.0/26',
      '10.244.129.0/26',
    ]);
  });

  it('keeps BIRD routes a site could have written: no Calico block of that size here, wider than a block, another table', () => {
    const routes = [
      r('10.0.0.0/8', { type: 'blackhole', protocol: 'bird' }),
      r('172.16.5.0/24', { gateway: '192.168.1.2', dev: 'eth0', protocol: 'bird' }),
      r('172.16.6.0/26', { gateway: '192.168.1.2', dev: 'eth0', protocol: 'bird', table: '200' }),
    ];
    expect(owned(routes, ctx(calicoFacts()))).toEqual([]);
    expect(kept(routes, ctx(calicoFacts()))).toEqual({
      '10.0.0.0/8': "/8 is wider than calico's blocks (/20-/32)",
      '172.16.5.0/24': "proto bird via the uplink and no calico block of that size on this node: a site's own BIRD may have written it",
      '172.16.6.0/26': 'in table 200',
    });
    // A BIRD route inside --pod-cidr is Calico's.
    expect(owned([routes[1]!], ctx(calicoFacts({ podNetworks: [net('172.16.0.0/16')] })))).toEqual(['172.16.5.0/24']);
  });

  it("overlapping pools: Flannel's removal keeps every Calico route inside its network, and Calico's keeps Flannel's", () => {
    const flannelRoutes = [r('10.244.2.0/24', { gateway: '192.168.1.12', dev: 'eth0' })];
    const all = [...calicoRoutes, ...flannelRoutes, r('10.244.9.0/24', { gateway: '192.168.1.19', dev: 'eth0', protocol: '17' })];
    expect(owned(all, ctx(facts(), ['vxlan.calico', 'flannel.1']))).toEqual(['10.244.2.0/24']);
    expect(owned(all, ctx(calicoFacts(), ['vxlan.calico', 'flannel.1']))).not.toContain('10.244.2.0/24');
    expect(owned(all, ctx(calicoFacts(), ['vxlan.calico', 'flannel.1']))).not.toContain('10.244.9.0/24');
  });
});

describe('the undo of the firewall batch', () => {
  const save = [
    '*filter',
    ':FORWARD ACCEPT [0:0]',
    ':FLANNEL-FWD - [0:0]',
    ':SITE-FW - [0:0]',
    '-A FORWARD -j KUBE-FORWARD',
    '-A FORWARD -j SITE-FW',
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    '-A SITE-FW -s 10.244.0.0/16 -d 192.168.50.0/24 -j DROP',
    'COMMIT',
    '',
  ].join('\n');

  it('puts a rule back after the rule it followed, wherever that is now: a rule inserted at the top since keeps its place ahead of it', () => {
    const dump = parseIptablesSave(save);
    const tables = firewallDeletions(dump, { facts: facts(), remainingConfigs: [], family: 4 });
    const undo = undoScript(dump, tables);
    // The rule before it by a digest of its tokens: the backup carries no foreign rule's text.
    const digest = createHash('sha256').update('-j SITE-FW').digest('hex').slice(0, 16);
    expect(undo).toContain(`# after FORWARD ${digest}\n-I FORWARD 3 -m comment --comment "flanneld forward" -j FLANNEL-FWD\n`);
    expect(undo).not.toContain('SITE-FW');
    // The run removed Flannel's rules; since then a rule went in at the top of FORWARD.
    const now = parseIptablesSave(
      [
        '*filter',
        ':FORWARD ACCEPT [0:0]',
        ':SITE-FW - [0:0]',
        '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
        '-A FORWARD -j KUBE-FORWARD',
        '-A FORWARD -j SITE-FW',
        '-A SITE-FW -s 10.244.0.0/16 -d 192.168.50.0/24 -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    );
    // After SITE-FW (now the third rule), not at its old index 3, which is before SITE-FW.
    expect(missingFromDump(undo, now)).toContain('-I FORWARD 4 -m comment --comment "flanneld forward" -j FLANNEL-FWD\n');
    // The rule it followed gone: its old index.
    const gone = parseIptablesSave(
      [
        '*filter',
        ':FORWARD ACCEPT [0:0]',
        '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
        '-A FORWARD -j KUBE-FORWARD',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(missingFromDump(undo, gone)).toContain('-I FORWARD 3 -m comment --comment "flanneld forward" -j FLANNEL-FWD\n');
  });
});
