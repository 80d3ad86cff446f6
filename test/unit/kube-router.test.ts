// kube-router's profile and the general schema fields it brought: a qualifier on a generic plugin
// type, ip rules, own routing tables and rt_tables lines, and KUBE-/CNI- name spaces protected by name.
import { describe, expect, it } from 'vitest';
import { k3sNetpolLive, embeddedLive, type NodeDistro } from '../../src/distros/node.js';
import { ownsConfig } from '../../src/inspect.js';
import { firewallDeletions } from '../../src/ownership.js';
import { parseCniConfig } from '../../src/parse/conflist.js';
import { parseIptablesSave } from '../../src/parse/iptables.js';
import { planPolicyRouting, ruleDeleteLine, ruleOwner, rtTablesLines, rtTablesSed } from '../../src/phases/policy-routing.js';
import type { Ctx } from '../../src/phases/types.js';
import { FakeHost } from '../../src/host/fake.js';
import { underRoot } from '../../src/host/host.js';
import { detect } from '../../src/profiles/detect.js';
import { foreignNode } from './fake-node.js';
import { Gaps } from '../../src/inspect.js';
import { flannel } from '../../src/profiles/flannel.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { kubeRouter } from '../../src/profiles/kube-router.js';
import { protectedName } from '../../src/profiles/protected.js';
import { isPodNetworkConfig } from '../../src/profiles/targets.js';
import { profileFacts } from '../../src/inspect.js';

const kr = loadProfiles().find((p) => p.name === 'kube-router')!;
const conf = (name: string, bridge: string | undefined, file = '/etc/cni/net.d/10-x.conflist') =>
  parseCniConfig(
    file,
    JSON.stringify({
      cniVersion: '0.3.0',
      name,
      plugins: [{ type: 'bridge', ...(bridge ? { bridge } : {}), ipam: { type: 'host-local' } }, { type: 'portmap' }],
    }),
  );

describe('a qualifier on a generic plugin type', () => {
  it("kube-router's config is its own by bridge and network; podman's, a site's and Kilo's bridge configs are not", () => {
    expect(ownsConfig(kr, conf('mynet', 'kube-bridge'))).toBe(true);
    expect(ownsConfig(kr, conf('kubernetes', 'kube-bridge'))).toBe(true); // kubespray's template
    expect(ownsConfig(kr, conf('podman', 'cni-podman0'))).toBe(false);
    expect(ownsConfig(kr, conf('mynet', undefined))).toBe(false); // the bridge plugin's default cni0
    expect(ownsConfig(kr, conf('kilo', 'kube-bridge'))).toBe(false);
    expect(ownsConfig(kr, conf('site', 'br0'))).toBe(false);
    expect(isPodNetworkConfig(conf('mynet', 'kube-bridge'))).toBe(true);
    expect(isPodNetworkConfig(conf('podman', 'cni-podman0'))).toBe(false);
  });

  it('a profile claiming a generic type without a qualifier, or qualifying a type it does not claim, is refused', () => {
    expect(() => loadProfiles([{ ...flannel, name: 'greedy', config: { pluginTypes: ['bridge'] } }])).toThrow(
      'invalid profile greedy: config.pluginTypes.0: "bridge" is a generic plugin type (podman and sites use it too): add config.pluginQualifiers.bridge with the networks or bridges the CNI writes',
    );
    expect(() =>
      loadProfiles([{ ...flannel, name: 'odd', config: { pluginTypes: ['flannel'], pluginQualifiers: { bridge: { bridges: ['x'] } } } }]),
    ).toThrow('invalid profile odd: config.pluginQualifiers.bridge: qualifies a type that is not in config.pluginTypes');
    expect(() =>
      loadProfiles([{ ...flannel, name: 'empty', config: { pluginTypes: ['bridge'], pluginQualifiers: { bridge: {} } } }]),
    ).toThrow('invalid profile empty: config.pluginQualifiers.bridge: must name networks or bridges');
  });
});

describe('KUBE- and CNI- name spaces', () => {
  it('a bare KUBE-, CNI- or shorter prefix is refused for chains and ipsets', () => {
    for (const [field, bad] of [
      ['chainPrefixes', 'KUBE-'],
      ['chainPrefixes', 'KUBE'],
      ['chainPrefixes', 'CNI-'],
      ['ipsetPrefixes', 'inet6:KUBE-'],
      ['chainPrefixes', 'K'],
    ] as const) {
      expect(() => loadProfiles([{ ...flannel, name: 'wide', firewall: { ...flannel.firewall, [field]: [bad] } }])).toThrow(
        /^invalid profile wide: firewall\.(chainPrefixes|ipsetPrefixes)\.0: .* give an exact sub-prefix/,
      );
    }
  });

  it("a sub-prefix never takes kube-proxy's or kubelet's names, whatever it is", () => {
    for (const n of [
      'KUBE-SERVICES',
      'KUBE-SVC-NPX46M4PTMTKRN6Y',
      'KUBE-SEP-X',
      'KUBE-MARK-MASQ',
      'KUBE-FIREWALL',
      'KUBE-KUBELET-CANARY',
      'KUBE-NODEPORTS',
    ])
      expect(protectedName(n)?.prefix).toBe('KUBE-');
    for (const n of ['KUBE-ROUTER-INPUT', 'KUBE-NWPLCY-DEFAULT', 'KUBE-POD-FW-ABC', 'KUBE-SRC-X']) expect(protectedName(n)).toBeNull();
    // A profile (valid by the schema) whose sub-prefix would cover kube-proxy's chains still leaves them.
    const greedy = loadProfiles([
      { ...kubeRouter, name: 'greedy', firewall: { ...kubeRouter.firewall, chainPrefixes: ['KUBE-S', 'KUBE-N'] } },
    ])[0]!;
    const dump = parseIptablesSave(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':KUBE-SERVICES - [0:0]',
        ':KUBE-SVC-AAAA - [0:0]',
        ':KUBE-NODEPORTS - [0:0]',
        ':KUBE-NWPLCY-DEFAULT - [0:0]',
        ':KUBE-SITE - [0:0]',
        '-A INPUT -j KUBE-SERVICES',
        '-A INPUT -j KUBE-NWPLCY-DEFAULT',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const facts = [profileFacts(greedy, [], null, [], [])];
    expect(firewallDeletions(dump, { facts, remainingConfigs: [], family: 4 })).toEqual([
      {
        table: 'filter',
        deletes: [expect.objectContaining({ chain: 'INPUT', target: 'KUBE-NWPLCY-DEFAULT' })],
        chains: ['KUBE-NWPLCY-DEFAULT', 'KUBE-SITE'],
      },
    ]);
  });
});

describe("kube-router's pod egress masquerade: a rule shape that names no network", () => {
  it('is removed without knowing the pod network, in POSTROUTING only, and not with another set', () => {
    const spec = (set: string) =>
      `-m set --match-set ${set} src -m set ! --match-set ${set} dst -m set ! --match-set kube-router-node-ips dst -j MASQUERADE --random-fully`;
    const dump = parseIptablesSave(
      [
        '*nat',
        ':POSTROUTING ACCEPT [0:0]',
        ':SITE - [0:0]',
        `-A POSTROUTING ${spec('kube-router-pod-subnets')}`,
        `-A POSTROUTING ${spec('site-pods')}`,
        `-A SITE ${spec('kube-router-pod-subnets')}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
    const facts = [profileFacts(kr, [], null, [], [])];
    const out = firewallDeletions(dump, { facts, remainingConfigs: [], family: 4 });
    expect(out.map((t) => t.deletes.map((r) => `${r.chain} ${r.spec}`))).toEqual([[`POSTROUTING ${spec('kube-router-pod-subnets')}`]]);
  });
});

describe('ip rules and routing tables', () => {
  it("a rule is the CNI's when every field its spec gives matches; the site's rule at the same priority is not", () => {
    expect(ruleOwner({ priority: 32765, src: '10.245.1.0', srclen: 24, table: '77' }, [kr])?.name).toBe('kube-router');
    expect(ruleOwner({ priority: 32765, src: 'all', table: '79' }, [kr])?.name).toBe('kube-router');
    expect(ruleOwner({ priority: 32764, src: 'all', fwmark: '0x3e8', table: '78' }, [kr])?.name).toBe('kube-router');
    expect(ruleOwner({ priority: 100, src: 'all', fwmark: '0x3e8', table: '78' }, [kr])).toBeUndefined(); // 78's rule is at 32764
    expect(ruleOwner({ priority: 32765, src: '10.50.0.0', srclen: 16, table: '100' }, [kr])).toBeUndefined();
    expect(ruleOwner({ priority: 32766, src: 'all', table: '254' }, [kr])).toBeUndefined();
    expect(ruleOwner({ priority: 0, src: 'all', table: 'local' }, [kr])).toBeUndefined();
  });

  it('deletes a rule by its exact selector, and keeps one it cannot give back exactly', () => {
    expect(ruleDeleteLine({ priority: 32765, src: '10.245.1.0', srclen: 24, table: '77' })).toBe(
      'rule del priority 32765 from 10.245.1.0/24 table 77',
    );
    expect(ruleDeleteLine({ priority: 32764, src: 'all', fwmark: '0x3e8', fwmask: '0xffff', iif: 'eth0', table: '78' })).toBe(
      'rule del priority 32764 fwmark 0x3e8/0xffff iif eth0 table 78',
    );
    expect(ruleDeleteLine({ priority: 9, src: 'all', not: null, dst: 'fd00::', dstlen: 64, table: '2004' })).toBe(
      'rule del priority 9 not to fd00::/64 table 2004',
    );
    expect(ruleDeleteLine({ priority: 9, src: 'all', iif: 'a b', table: '2004' })).toBeNull();
    expect(ruleDeleteLine({ priority: 9, src: 'all', newfield: 'x', table: '2004' })).toBeNull();
  });

  it('tables must not be the reserved ones; rt_tables lines go only when number and name both match', () => {
    expect(() => loadProfiles([{ ...kubeRouter, name: 'main', routes: { ...kubeRouter.routes, tables: [254] } }])).toThrow(
      'invalid profile main: routes.tables.0: must not be a reserved table (0, 253 default, 254 main, 255 local)',
    );
    const text =
      '255\tlocal\n77 kube-router\n# 78 kube-router-dsr\n200\texternal_ip\n79 external_ip\n  78\tkube-router-dsr  \n77 kube-router-x\n';
    expect(rtTablesLines(text, kr.routes.rtTables)).toEqual([1, 4, 5]);
    expect(rtTablesSed({ table: 77, name: 'a.b' })).toBe('/^[[:space:]]*77[[:space:]]+a\\.b[[:space:]]*$/d');
  });
});

describe('k3s runs kube-router inside it', () => {
  const nd = (config: Record<string, string> | null): NodeDistro => ({
    name: 'k3s',
    role: 'server',
    evidence: [],
    dataDir: null,
    confDirs: [],
    binDirs: [],
    criSocket: null,
    units: { kubelet: [], runtime: [] },
    adds: {},
    config,
  });
  it('its network policy controller is live while k3s runs, unless disable-network-policy', () => {
    const k3s = { comm: 'k3s-server', argv: ['/usr/local/bin/k3s', 'server'] };
    expect(embeddedLive(nd(null), [k3s]).get('kube-router')?.why).toBe("k3s server runs kube-router's network policy controller inside it");
    expect(k3sNetpolLive([{ ...k3s, argv: [...k3s.argv, '--disable-network-policy'] }], null).live).toBe(false);
    expect(k3sNetpolLive([k3s], { 'disable-network-policy': 'true' }).live).toBe(false);
    expect(k3sNetpolLive([], null).live).toBe(false);
  });
});

describe('rt_tables lines on a node', () => {
  // Only the rt_tables entries: rules and tables need `ip rule`, which the fake host does not model.
  const onlyRtTables = loadProfiles([{ ...kubeRouter, name: 'kr-files', routes: { ...kubeRouter.routes, rules: [], tables: [] } }])[0]!;
  const plan = (host: FakeHost) =>
    planPolicyRouting({
      host,
      snapshot: { configs: [], facts: [profileFacts(onlyRtTables, [], null, [], [])], remainingConfigs: [] },
      selected: new Set(['routes']),
      gaps: new Gaps(),
    } as unknown as Ctx);
  const TEXT = '255\tlocal\n100 site\n77 kube-router\n79 external_ip\n';

  it('removes them from the file with sed, backing the file up; the other lines are left to sed untouched', async () => {
    const host = new FakeHost().writeFile('/etc/iproute2/rt_tables', TEXT);
    const p = await plan(host);
    expect(p.steps).toEqual([
      {
        argv: [
          'sed',
          '-i',
          '-E',
          '-e',
          rtTablesSed({ table: 77, name: 'kube-router' }),
          '-e',
          rtTablesSed({ table: 79, name: 'external_ip' }),
          '--',
          underRoot(host.root, '/etc/iproute2/rt_tables'),
        ],
        removes: { kind: 'rt_tables entry', items: ['/etc/iproute2/rt_tables: 77 kube-router', '/etc/iproute2/rt_tables: 79 external_ip'] },
        backup: { files: ['/etc/iproute2/rt_tables'] },
      },
    ]);
  });

  it('leaves a symlinked rt_tables, or one below a symlinked directory, with a note', async () => {
    const linked = new FakeHost().writeFile('/usr/share/iproute2/rt_tables', TEXT).symlink('/etc/iproute2', '/usr/share/iproute2');
    const a = await plan(linked);
    expect(a.steps.map((s) => s.argv.at(-1))).toEqual([underRoot(linked.root, '/usr/share/iproute2/rt_tables')]);
    expect(a.notes).toEqual(['kept /etc/iproute2/rt_tables: a directory above it is a symlink']);
    const file = new FakeHost().writeFile('/srv/rt_tables', TEXT).symlink('/etc/iproute2/rt_tables', '/srv/rt_tables');
    const b = await plan(file);
    expect(b.steps).toEqual([]);
    expect(b.notes).toEqual(['kept /etc/iproute2/rt_tables: it is a symlink, not a file: its entries 77 kube-router, 79 external_ip stay']);
  });
});

describe('detecting kube-router', () => {
  it("by its nftables tables, but not by names a distribution claims for another profile (k3s's netpol goes with its Flannel)", async () => {
    const host = foreignNode().addNftTable('ip', 'kube-router-filter-ipv4');
    const found = await detect(host, loadProfiles(), new Gaps());
    expect(found.find((d) => d.profile.name === 'kube-router')?.evidence).toEqual(['nftables table ip kube-router-filter-ipv4']);
    const claimed = { chainPrefixes: ['KUBE-ROUTER-'], nftables: [{ family: 'ip', name: 'kube-router-filter-ipv4' }] };
    expect((await detect(host, loadProfiles(), new Gaps(), undefined, claimed)).map((d) => d.profile.name)).not.toContain('kube-router');
  });
});
