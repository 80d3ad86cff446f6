// Each phase's plan for given node states: the exact steps, and nothing when the state is absent.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PhaseFailedError, RefusedError } from '../../src/errors.js';
import { FakeHost } from '../../src/host/fake.js';
import { cniConfig } from '../../src/phases/cni-config.js';
import { cniState } from '../../src/phases/cni-state.js';
import { drain } from '../../src/phases/drain.js';
import { firewall } from '../../src/phases/firewall.js';
import { interfaces } from '../../src/phases/interfaces.js';
import { modules } from '../../src/phases/modules.js';
import { netns } from '../../src/phases/netns.js';
import { removeSandboxes } from '../../src/phases/remove-sandboxes.js';
import { checkBackupDir, preflight } from '../../src/phases/preflight.js';
import { routes } from '../../src/phases/routes.js';
import { startKubelet, startRuntime, stopKubelet, stopRuntime } from '../../src/phases/services.js';
import type { PlannedStep } from '../../src/phases/types.js';
import { uncordon } from '../../src/phases/uncordon.js';
import { adminConf } from '../../src/phases/kube.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { FLANNEL_CONFLIST, ipv4Rules } from '../helpers/flannel-node.js';
import { dirtyFlannelNode, foreignNode, NETWORK, podsFor, SUBNET } from './fake-node.js';
import { ctxFor, DEFAULT_PHASES, isolateKubeconfigEnv, planned } from './helpers.js';

isolateKubeconfigEnv();

const bare = (steps: PlannedStep[]) => steps.map((s) => (s.stdin === undefined ? { argv: s.argv } : { argv: s.argv, stdin: s.stdin }));
const apply = async (h: FakeHost, steps: PlannedStep[]) => {
  for (const s of steps) await h.apply(s);
};

describe('preflight', () => {
  it('says what it found and which configs stay, and changes nothing', async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    const plan = await preflight.plan(await ctxFor(host));
    expect(plan).toEqual({
      steps: [],
      notes: [
        'flannel: config /etc/cni/net.d/10-flannel.conflist; networks cbr0; pod network 10.244.0.0/16, fd00:10:244::/56',
        '2 CNI configs present; the runtime uses the first in lexical order: /etc/cni/net.d/10-flannel.conflist',
        'kept (not owned by flannel): /etc/cni/net.d/87-podman-bridge.conflist',
      ],
    });
  });
});

describe('cni-config', () => {
  it("removes Flannel's config and nothing else in the directory", async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    expect(bare((await cniConfig.plan(await ctxFor(host))).steps)).toEqual([
      { argv: ['rm', '-f', '--', '/etc/cni/net.d/10-flannel.conflist'] },
    ]);
  });

  it('finds the config by its plugin type, whatever the file is called', async () => {
    const host = foreignNode()
      .writeFile('/etc/cni/net.d/99-custom.conf', '{"name":"cbr0","type":"flannel"}')
      .writeFile('/etc/cni/net.d/50-other.json', '{"name":"x","type":"bridge"}');
    expect(bare((await cniConfig.plan(await ctxFor(host))).steps)).toEqual([{ argv: ['rm', '-f', '--', '/etc/cni/net.d/99-custom.conf'] }]);
  });

  it('resolves the path under --root', async () => {
    const host = new FakeHost({ root: '/srv/node' }).writeFile('/etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST);
    expect(bare((await cniConfig.plan(await ctxFor(host))).steps)).toEqual([
      { argv: ['rm', '-f', '--', '/srv/node/etc/cni/net.d/10-flannel.conflist'] },
    ]);
  });

  it('removes a symlinked config as a link, leaving its target', async () => {
    const host = foreignNode()
      .writeFile('/etc/kube-flannel/cni-conf.json', FLANNEL_CONFLIST)
      .symlink('/etc/cni/net.d/10-flannel.conflist', '/etc/kube-flannel/cni-conf.json');
    const plan = await cniConfig.plan(await ctxFor(host));
    await apply(host, plan.steps);
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(false);
    expect(host.exists('/etc/kube-flannel/cni-conf.json')).toBe(true);
  });

  it('plans nothing without a Flannel config', async () => {
    expect((await cniConfig.plan(await ctxFor(foreignNode()))).steps).toEqual([]);
  });

  it("a config named by a path with a symlinked directory above it (a crashed run's journal can name any path) stays, with why", async () => {
    const { host } = dirtyFlannelNode();
    host.symlink('/srv/confs', '/etc/cni/net.d');
    const ctx = await ctxFor(host);
    const facts = ctx.snapshot.facts[0]!;
    facts.configs = facts.configs.map((c) => ({ ...c, file: c.file.replace('/etc/cni/net.d/', '/srv/confs/') }));
    const plan = await cniConfig.plan(ctx);
    expect(plan.steps).toEqual([]);
    expect(plan.notes).toContain(
      'left alone: /srv/confs/10-flannel.conflist: a directory above it is a symlink, and cni-sweep never follows one out of the conf dir',
    );
  });
});

describe('the kubeconfig drain and uncordon use', () => {
  it("the control plane's admin.conf under the root; not when a directory above it is a symlink (kubectl would follow it out of the root)", async () => {
    const host = new FakeHost({ root: '/srv/node' }).writeFile('/etc/kubernetes/admin.conf', 'apiVersion: v1\n');
    expect(await adminConf(host)).toBe('/srv/node/etc/kubernetes/admin.conf');
    host.writeFile('/srv/other/admin.conf', 'apiVersion: v1\n').symlink('/etc/kubernetes', '../srv/other');
    expect(await adminConf(host)).toBeNull();
  });
});

describe('cni-state', () => {
  it("removes Flannel's state, cbr0's IPAM and result caches, and leaves podman's", async () => {
    const { host, pods } = dirtyFlannelNode();
    const results = pods.map((p) => `/var/lib/cni/results/cbr0-${p.cid}-eth0`).sort();
    expect(bare((await cniState.plan(await ctxFor(host))).steps)).toEqual([
      { argv: ['rm', '-rf', '--', '/run/flannel', '/var/lib/cni/flannel', '/var/lib/cni/networks/cbr0', ...results] },
    ]);
  });

  it('takes the result caches from their listing, without a look at each (hundreds at 250 pods)', async () => {
    const { host, pods } = dirtyFlannelNode();
    const ctx = await ctxFor(host);
    const looked: string[] = [];
    const entryType = host.entryType.bind(host);
    host.entryType = (p: string) => {
      looked.push(p);
      return entryType(p);
    };
    const rm = (await cniState.plan(ctx)).steps[0]!.argv;
    expect(rm).toEqual(expect.arrayContaining(pods.map((p) => `/var/lib/cni/results/cbr0-${p.cid}-eth0`)));
    expect(looked.filter((p) => p.startsWith('/var/lib/cni/results/'))).toEqual([]);
  });

  it("leaves a network's state alone when a config that stays is that network too (a site's bridge config named cbr0)", async () => {
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/50-site.conf', '{"cniVersion":"0.4.0","name":"cbr0","type":"bridge","bridge":"site0"}');
    const plan = await cniState.plan(await ctxFor(host));
    expect(bare(plan.steps)).toEqual([{ argv: ['rm', '-rf', '--', '/run/flannel', '/var/lib/cni/flannel'] }]);
    expect(plan.notes).toContain(
      'left alone: the state of network "cbr0": /etc/cni/net.d/50-site.conf, a config that stays, is network "cbr0" too',
    );
    // Nor do the rules that name it go.
    const fw = (await firewall.plan(await ctxFor(host))).steps.map((st) => st.stdin ?? '').join('\n');
    expect(fw).not.toMatch(/name: \\?"cbr0/);
  });

  it("still finds cbr0's state once the config is gone", async () => {
    const cache = `/var/lib/cni/results/cbr0-${'ab'.repeat(32)}-eth0`;
    const host = foreignNode().writeFile('/var/lib/cni/networks/cbr0/10.244.1.2', 'x').writeFile(cache, '{}');
    expect(bare((await cniState.plan(await ctxFor(host))).steps)).toEqual([
      { argv: ['rm', '-rf', '--', '/var/lib/cni/networks/cbr0', cache] },
    ]);
  });

  it('follows the network name of the config', async () => {
    const host = foreignNode()
      .writeFile('/etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST.replace('"cbr0"', '"podnet"'))
      .writeFile('/var/lib/cni/networks/podnet/10.244.1.2', 'x')
      .writeFile('/var/lib/cni/networks/cbr0/10.244.1.2', 'x');
    expect(bare((await cniState.plan(await ctxFor(host))).steps)).toEqual([{ argv: ['rm', '-rf', '--', '/var/lib/cni/networks/podnet'] }]);
  });

  // libcni names result caches <network>-<containerID>-<ifname>: a network called "cbr0-v2" is
  // somebody else's, and its caches merely start with "cbr0-".
  it('leaves the result caches of a network whose name only starts with cbr0-', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 1 });
    host.writeFile(`/var/lib/cni/results/cbr0-v2-${'e'.repeat(64)}-eth0`, '{"kind":"cniCacheV1","networkName":"cbr0-v2"}');
    const rm = (await cniState.plan(await ctxFor(host))).steps[0]!.argv;
    expect(rm.filter((a) => a.startsWith('/var/lib/cni/results/'))).toEqual([`/var/lib/cni/results/cbr0-${pods[0]!.cid}-eth0`]);
  });

  it("never follows a symlinked directory out of the CNI's locations", async () => {
    const host = foreignNode()
      .writeFile('/run/flannel/subnet.env', 'FLANNEL_NETWORK=10.244.0.0/16\n')
      .writeFile('/data/cni/networks/cbr0/10.244.1.2', 'x');
    for (const p of [...host.fs.keys()]) if (p.startsWith('/var/lib/cni')) host.fs.delete(p);
    host.symlink('/var/lib/cni', '/data/cni');
    const plan = await cniState.plan(await ctxFor(host));
    expect(bare(plan.steps)).toEqual([{ argv: ['rm', '-rf', '--', '/run/flannel'] }]);
    expect(plan.notes).toEqual([
      "left alone: a directory above /var/lib/cni/networks/cbr0 is a symlink, and cni-sweep never follows one out of the CNI's locations",
    ]);
  });

  it('leaves every result cache alone when only their directory is a symlink, and removes the rest', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 2 });
    for (const p of [...host.fs.keys()])
      if (p.startsWith('/var/lib/cni/results/')) {
        host.fs.set(p.replace('/var/lib/cni/results/', '/data/results/'), host.fs.get(p)!);
        host.fs.delete(p);
      }
    host.fs.delete('/var/lib/cni/results');
    host.mkdir('/data/results').symlink('/var/lib/cni/results', '/data/results');
    const plan = await cniState.plan(await ctxFor(host));
    expect(plan.steps[0]!.argv.filter((a) => a.includes('/results'))).toEqual([]);
    expect(plan.steps[0]!.argv).toContain('/var/lib/cni/networks/cbr0');
    expect([...plan.notes].sort()).toEqual(
      pods
        .map(
          (p) =>
            `left alone: a directory above /var/lib/cni/results/cbr0-${p.cid}-eth0 is a symlink, and cni-sweep never follows one out of the CNI's locations`,
        )
        .sort(),
    );
  });

  it('removes a symlinked state directory as a link only', async () => {
    const host = foreignNode().writeFile('/data/flannel/keep', 'x').symlink('/var/lib/cni/flannel', '/data/flannel');
    const plan = await cniState.plan(await ctxFor(host));
    expect(bare(plan.steps)).toEqual([{ argv: ['rm', '-rf', '--', '/var/lib/cni/flannel'] }]);
    await apply(host, plan.steps);
    expect(host.exists('/data/flannel/keep')).toBe(true);
  });

  it('plans nothing when there is no state', async () => {
    expect(await cniState.plan(await ctxFor(foreignNode()))).toEqual({ steps: [], notes: [] });
  });
});

describe('interfaces', () => {
  it("keeps cni0 and the pods on it when a config that stays uses it (containerd's stock 10-containerd-net.conflist)", async () => {
    const { host, pods } = dirtyFlannelNode();
    host.writeFile(
      '/etc/cni/net.d/10-containerd-net.conflist',
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'containerd-net',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]] },
          },
        ],
      }),
    );
    const plan = await interfaces.plan(await ctxFor(host));
    expect(bare(plan.steps)).toEqual([{ argv: ['ip', '-batch', '-'], stdin: 'link delete flannel.1\n' }]);
    expect(plan.notes.join('\n')).toContain('cni0: the bridge of /etc/cni/net.d/10-containerd-net.conflist, a config that stays');
    await apply(host, plan.steps);
    expect(host.linkNames()).toEqual(expect.arrayContaining(['cni0', ...pods.map((p) => p.veth)]));
  });

  it('deletes the pod veths, flannel.1 and cni0 as one link group, in one ip -batch', async () => {
    const { host, pods } = dirtyFlannelNode();
    expect(bare((await interfaces.plan(await ctxFor(host))).steps)).toEqual([
      {
        argv: ['ip', '-batch', '-'],
        stdin: `link set dev ${pods[0]!.veth} group 4242424\nlink set dev ${pods[1]!.veth} group 4242424\nlink set dev flannel.1 group 4242424\nlink set dev cni0 group 4242424\nlink delete group 4242424\n`,
      },
    ]);
  });

  it('picks a link group no link is in, and deletes a single link by name', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.link('docker0')!.group = '4242424';
    expect((await interfaces.plan(await ctxFor(host))).steps[0]!.stdin).toContain(`link set dev ${pods[0]!.veth} group 4242425\n`);
    const one = foreignNode().addLink({ ifname: 'flannel.1', linkinfo: { info_kind: 'vxlan' } });
    expect((await interfaces.plan(await ctxFor(one))).steps[0]!.stdin).toBe('link delete flannel.1\n');
    // docker0 kept its group, and its veth is not in the one deleted.
    await apply(host, (await interfaces.plan(await ctxFor(host))).steps);
    expect(host.linkNames()).toEqual(expect.arrayContaining(['docker0', 'vethsite']));
  });

  it('deletes overlay devices with a non-default VNI and the wireguard device', async () => {
    const host = foreignNode()
      .addLink({ ifname: 'flannel.4096', linkinfo: { info_kind: 'vxlan' } })
      .addLink({ ifname: 'flannel-v6.4096', linkinfo: { info_kind: 'vxlan' } })
      .addLink({ ifname: 'flannel-wg', linkinfo: { info_kind: 'wireguard' } });
    expect(bare((await interfaces.plan(await ctxFor(host))).steps)).toEqual([
      {
        argv: ['ip', '-batch', '-'],
        stdin:
          'link set dev flannel.4096 group 4242424\nlink set dev flannel-v6.4096 group 4242424\nlink set dev flannel-wg group 4242424\nlink delete group 4242424\n',
      },
    ]);
  });

  it('deletes a link the kernel may not delete by group (no kind reported) by name, after the group', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 1 });
    host.addLink({ ifname: 'flannel0' }); // no kind reported
    const steps = (await interfaces.plan(await ctxFor(host))).steps;
    expect(steps[0]!.stdin).toBe(
      `link set dev ${pods[0]!.veth} group 4242424\nlink set dev flannel.1 group 4242424\nlink set dev cni0 group 4242424\nlink delete group 4242424\nlink delete flannel0\n`,
    );
    // In the group, that link would have made the kernel refuse the whole delete.
    const other = dirtyFlannelNode({ pods: 1 });
    other.host.addLink({ ifname: 'flannel0' }); // no kind reported
    await expect(
      apply(other.host, [
        { argv: ['ip', '-batch', '-'], stdin: 'link set dev cni0 group 7\nlink set dev flannel0 group 7\nlink delete group 7\n' },
      ]),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/Operation not supported/) });
    expect(other.host.linkNames()).toEqual(expect.arrayContaining(['cni0', 'flannel0']));
    await apply(host, steps);
    expect(host.linkNames().filter((n) => /^(cni0|flannel)/.test(n) || n === pods[0]!.veth)).toEqual([]);
  });

  it('plans no link delete when there is no cni0 or flannel device', async () => {
    expect((await interfaces.plan(await ctxFor(foreignNode()))).steps).toEqual([]);
  });

  it('records that links could not be listed when ip is missing', async () => {
    const ctx = await ctxFor(foreignNode().removeBinary('ip'));
    expect((await interfaces.plan(ctx)).steps).toEqual([]);
    expect(ctx.gaps.items).toEqual(['ip: not installed']);
  });
});

describe('routes', () => {
  it("deletes the host-gw routes, v4 and v6, and leaves routes through Flannel's devices to the interfaces phase", async () => {
    const { host } = dirtyFlannelNode();
    expect(bare((await routes.plan(await ctxFor(host))).steps)).toEqual([
      {
        argv: ['ip', '-batch', '-'],
        stdin:
          'route delete 10.244.2.0/24 via 192.168.1.12 dev eth0\nroute delete fd00:10:244:2::/64 via fd00:1::12 dev eth0 metric 1024\n',
      },
    ]);
  });

  it("deletes the routes through Flannel's devices itself when interfaces is skipped", async () => {
    const { host } = dirtyFlannelNode();
    const ctx = await ctxFor(host, { selected: new Set(DEFAULT_PHASES.filter((n) => n !== 'interfaces')) });
    const plan = await routes.plan(ctx);
    expect(plan.steps[0]!.stdin).toBe(
      [
        'route delete 10.244.0.0/24 via 10.244.0.0 dev flannel.1',
        'route delete 10.244.2.0/24 via 192.168.1.12 dev eth0',
        'route delete fd00:10:244:2::/64 via fd00:1::12 dev eth0 metric 1024',
        '',
      ].join('\n'),
    );
    await apply(host, plan.steps);
    expect(host.routes[4].map((r) => r.dst)).toEqual(['default', '10.244.1.0/24', '172.17.0.0/16', '192.168.1.0/24', '192.168.50.0/24']);
  });

  it("keeps a route of the host-gw shape via the default route's gateway (FLANNEL_NETWORK 10.0.0.0/8 over a site route)", async () => {
    const host = foreignNode().addRoute(4, { dst: '10.99.0.0/24', gateway: '192.168.1.1', dev: 'eth0' });
    const ctx = await ctxFor(host, { opts: { podCidrs: [{ family: 4, addr: 0x0a000000n, len: 8, text: '10.0.0.0/8' }] } });
    const plan = await routes.plan(ctx);
    expect(plan.steps).toEqual([]);
    expect(plan.notes.join('\n')).toContain("via 192.168.1.1, the default route's gateway: the site's router, not a node");
  });

  it("keeps host-gw-shaped routes while another device that stays has a network in the pod network (Antrea's gateway on the same podCIDR)", async () => {
    const { host } = dirtyFlannelNode();
    host
      .addLink({ ifname: 'antrea-gw0', linkinfo: { info_kind: 'openvswitch' } })
      .addAddr('antrea-gw0', '10.244.1.1/24')
      .addRoute(4, { dst: '10.244.1.0/24', dev: 'antrea-gw0', protocol: 'kernel', scope: 'link', prefsrc: '10.244.1.1' });
    const plan = await routes.plan(await ctxFor(host));
    expect(plan.steps.map((st) => st.stdin).join('')).not.toContain('10.244.2.0/24');
    expect(plan.notes.join('\n')).toContain('antrea-gw0, which stays, has a network inside the pod network: the route may be its CNI');
    // Its network is IPv4 only: Flannel's IPv6 host-gw route is not kept for it.
    expect(plan.steps.map((st) => st.stdin).join('')).toContain('route delete fd00:10:244:2::/64 via fd00:1::12 dev eth0');
    expect(plan.notes.join('\n')).not.toContain('fd00:10:244:2::/64');
  });

  it('uses --pod-cidr when subnet.env is gone', async () => {
    const host = foreignNode().addRoute(4, { dst: '10.42.3.0/24', gateway: '192.168.1.13', dev: 'eth0' });
    expect((await routes.plan(await ctxFor(host))).steps).toEqual([]);
    const ctx = await ctxFor(host, { opts: { podCidrs: [{ family: 4, addr: 0x0a2a0000n, len: 16, text: '10.42.0.0/16' }] } });
    expect((await routes.plan(ctx)).steps[0]!.stdin).toBe('route delete 10.42.3.0/24 via 192.168.1.13 dev eth0\n');
  });

  it('plans nothing on a node without Flannel routes', async () => {
    expect((await routes.plan(await ctxFor(foreignNode()))).steps).toEqual([]);
  });
});

describe('firewall', () => {
  it("deletes Flannel's rules on each family and its nftables tables, and applying that keeps everything else", async () => {
    const { host } = dirtyFlannelNode();
    const before4 = host.iptablesSave('iptables-nft');
    const plan = await firewall.plan(await ctxFor(host));
    expect(plan.steps.map((s) => s.argv)).toEqual([
      ['iptables-nft-restore', '--noflush', '-w'],
      ['ip6tables-nft-restore', '--noflush', '-w'],
      ['nft', '-f', '-'],
    ]);
    expect(plan.steps[1]!.stdin).toBe(
      '*nat\n-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-F FLANNEL-POSTRTG\n-X FLANNEL-POSTRTG\nCOMMIT\n' +
        '*filter\n-D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n-F FLANNEL-FWD\n-X FLANNEL-FWD\nCOMMIT\n',
    );
    expect(plan.steps[2]!.stdin).toBe('delete table ip flannel-ipv4\ndelete table ip6 flannel-ipv6\n');
    expect(plan.steps.map((s) => s.concurrent)).toEqual([true, true, true]);
    await apply(host, plan.steps);

    const kept = (text: string) => text.split('\n').filter((l) => l.startsWith('-A') && !/FLANNEL|CNI-|flanneld|name: /.test(l));
    expect(host.rules('iptables-nft', 'nat').concat(host.rules('iptables-nft', 'filter')).sort()).toEqual(kept(before4).sort());
    expect(host.chains('iptables-nft', 'nat')).toEqual([
      'PREROUTING',
      'INPUT',
      'OUTPUT',
      'POSTROUTING',
      'KUBE-SERVICES',
      'KUBE-POSTROUTING',
      'KUBE-MARK-MASQ',
    ]);
    expect(host.rules('ip6tables-nft', 'nat')).toEqual(['-A POSTROUTING -s fd00:99::/64 -j MASQUERADE']);
    expect(host.nftTables).toEqual([{ family: 'inet', name: 'site-filter' }]);
    expect((await firewall.plan(await ctxFor(host))).steps).toEqual([]);
  });

  it('checks both backends: Flannel rules left in iptables-legacy are removed there too', async () => {
    const { host } = dirtyFlannelNode({ ipv6: false, nftTable: false });
    host.setIptables(
      'iptables-legacy',
      ipv4Rules({ pods: podsFor(1), network: NETWORK, subnet: SUBNET, oldUntagged: true, podman: false, foreignRules: 0 }),
    );
    const plan = await firewall.plan(await ctxFor(host));
    expect(plan.steps.map((s) => s.argv[0])).toEqual(['iptables-nft-restore', 'iptables-legacy-restore']);
    expect(plan.steps[1]!.stdin).toContain('-D POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN\n');
    await apply(host, plan.steps);
    const left = host.iptablesSave('iptables-legacy').split('\n');
    expect(left.filter((l) => l.includes('10.244.'))).toEqual([
      '-A POSTROUTING -s 10.244.0.0/16 -d 192.168.50.0/24 -j ACCEPT',
      '-A SITE-FW -s 10.244.0.0/16 -d 192.168.50.0/24 -j DROP',
    ]);
    expect(left.filter((l) => l.includes('CNI-'))).toEqual([]);
  });

  it('learns which of its tables exist from one listing of every table, and reads none of them', async () => {
    const { host } = dirtyFlannelNode();
    host.nftTables = host.nftTables.filter((t) => t.name !== 'flannel-ipv6');
    const plan = await firewall.plan(await ctxFor(host));
    expect(plan.steps.at(-1)!.stdin).toBe('delete table ip flannel-ipv4\n');
    expect(host.queries.filter((q) => q[0] === 'nft').map((q) => q.join(' '))).toEqual(['nft list flowtables']);
    await apply(host, plan.steps);
    expect(host.nftTables).toEqual([{ family: 'inet', name: 'site-filter' }]);
  });

  it.each([
    ['fails (nft 0.8 has no flowtables listing)', { code: 1, stderr: 'Error: syntax error, unexpected flowtables\n' }],
    ['succeeds without naming the tables the iptables-nft saves show', { code: 0 }],
  ])('reads each of its tables when the listing of every table %s', async (_, failure) => {
    const { host } = dirtyFlannelNode();
    host.nftTables = host.nftTables.filter((t) => t.name !== 'flannel-ipv6');
    host.failQuery((argv) => argv.join(' ') === 'nft list flowtables', failure);
    const plan = await firewall.plan(await ctxFor(host));
    expect(plan.steps.at(-1)!.stdin).toBe('delete table ip flannel-ipv4\n');
    expect(host.queries.filter((q) => q[0] === 'nft').map((q) => q.join(' '))).toEqual([
      'nft list flowtables',
      'nft list table ip flannel-ipv4',
      'nft list table ip6 flannel-ipv6',
    ]);
    expect(plan.notes).toEqual([]);
    await apply(host, plan.steps);
    expect(host.nftTables).toEqual([{ family: 'inet', name: 'site-filter' }]);
  });

  it('does not ask a backend that is not installed', async () => {
    const { host } = dirtyFlannelNode();
    host.removeBinary('iptables-legacy-save', 'iptables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-legacy-restore');
    await firewall.plan(await ctxFor(host));
    // Asked twice (the fake keeps no answers): once for the rules, once to check nft's table listing.
    expect([...new Set(host.queries.map((q) => q.join(' ')).filter((q) => q.includes('save')))]).toEqual([
      'iptables-nft-save',
      'ip6tables-nft-save',
    ]);
  });

  it('uses the plain iptables name on distributions that ship one variant', async () => {
    const { host } = dirtyFlannelNode({ ipv6: false, nftTable: false });
    host.iptables.set('iptables', host.iptables.get('iptables-nft')!);
    host.bins = new Set(['ip', 'nft', 'systemctl', 'rm', 'iptables-save', 'iptables-restore']);
    const plan = await firewall.plan(await ctxFor(host));
    expect(plan.steps.map((s) => s.argv)).toEqual([['iptables-restore', '--noflush', '-w']]);
  });

  it('says when it could not check iptables or nftables at all', async () => {
    const { host } = dirtyFlannelNode();
    host.bins = new Set(['ip', 'systemctl']);
    expect(await firewall.plan(await ctxFor(host))).toEqual({
      steps: [],
      notes: ['no iptables binaries installed: iptables rules not checked', 'nft is not installed: nftables tables not checked'],
    });
  });

  it('plans nothing on a node without Flannel rules', async () => {
    expect(await firewall.plan(await ctxFor(foreignNode()))).toEqual({ steps: [], notes: [] });
  });
});

describe('netns', () => {
  it('unmounts and removes the stale cni-* namespaces', async () => {
    const { host, pods } = dirtyFlannelNode();
    const paths = pods.map((p) => `/run/netns/${p.netns}`).sort();
    expect(bare((await netns.plan(await ctxFor(host))).steps)).toEqual([
      { argv: ['umount', '--lazy', '--', ...paths] },
      { argv: ['rm', '-f', '--', ...paths] },
    ]);
  });

  it('splits many unmounts over four umount processes that run side by side, each namespace once', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 250 });
    const paths = pods.map((p) => `/run/netns/${p.netns}`).sort();
    const steps = (await netns.plan(await ctxFor(host))).steps;
    const umounts = steps.filter((s) => s.argv[0] === 'umount');
    expect(umounts.map((s) => s.argv.length - 3)).toEqual([63, 63, 63, 61]);
    expect(umounts.every((s) => s.concurrent && s.argv.slice(0, 3).join(' ') === 'umount --lazy --')).toBe(true);
    expect(umounts.flatMap((s) => s.argv.slice(3))).toEqual(paths);
    expect(steps.at(-1)).toMatchObject({ argv: ['rm', '-f', '--', ...paths] });
    expect(steps.at(-1)!.concurrent).toBeFalsy();
  });

  it('keeps a namespace a process still uses, and only removes one that is not mounted', async () => {
    const host = foreignNode()
      .addNetns('cni-aaaa', { inUse: true })
      .addNetns('cni-bbbb', { mounted: false })
      .addNetns('myns')
      .addNetns('cni-CAPS');
    const plan = await netns.plan(await ctxFor(host));
    expect(bare(plan.steps)).toEqual([{ argv: ['rm', '-f', '--', '/run/netns/cni-bbbb'] }]);
    expect(plan.notes).toEqual(['kept /run/netns/cni-aaaa: a running process still uses it']);
  });

  it('works on the files under --root', async () => {
    const host = new FakeHost({ root: '/srv/node' }).writeFile('/etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST).addNetns('cni-1234');
    expect(bare((await netns.plan(await ctxFor(host))).steps)).toEqual([
      { argv: ['umount', '--lazy', '--', '/srv/node/run/netns/cni-1234'] },
      { argv: ['rm', '-f', '--', '/srv/node/run/netns/cni-1234'] },
    ]);
  });

  it("keeps the namespaces of another CNI's pods, told apart by the host end of their veth", async () => {
    const { host, pods } = dirtyFlannelNode({ podman: true });
    host
      .addLink({ ifname: 'cni-podman0', linkinfo: { info_kind: 'bridge' } })
      .addLink({ ifname: 'vethpodman', master: 'cni-podman0', link_netnsid: 9, linkinfo: { info_kind: 'veth' } });
    const podman = host.addNetns('cni-0000aaaa').realPath('/run/netns/cni-0000aaaa');
    const inside = (peer: string) => [
      { ifindex: 2, ifname: 'eth0', link_index: host.link(peer)!.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
    ];
    host.netnsLinks.set(podman, inside('vethpodman'));
    host.netnsLinks.set(host.realPath(`/run/netns/${pods[0]!.netns}`), inside(pods[0]!.veth));
    // pods[1]'s namespace is gone: nsenter fails on its stale file, which is removed too
    const plan = await netns.plan(await ctxFor(host));
    const flannelNs = pods.map((p) => `/run/netns/${p.netns}`).sort();
    expect(bare(plan.steps)).toEqual([{ argv: ['umount', '--lazy', '--', ...flannelNs] }, { argv: ['rm', '-f', '--', ...flannelNs] }]);
    expect(plan.notes).toEqual(["kept /run/netns/cni-0000aaaa: its pod interface pairs with vethpodman, which is not flannel's"]);
  });

  it('touches no namespace when no CNI is selected', async () => {
    const host = foreignNode().addNetns('cni-1234');
    expect((await netns.plan(await ctxFor(host, { profiles: [] }))).steps).toEqual([]);
  });
});

describe('services', () => {
  it('stops kubelet when it runs, and starts it again afterwards', async () => {
    const ctx = await ctxFor(foreignNode());
    expect(bare((await planned(ctx, stopKubelet)).steps)).toEqual([{ argv: ['systemctl', 'stop', 'kubelet.service'] }]);
    expect(bare((await startKubelet.plan(ctx)).steps)).toEqual([{ argv: ['systemctl', 'start', 'kubelet.service'] }]);
  });

  it('stops every active runtime unit in order and starts them in reverse', async () => {
    const host = foreignNode();
    host.units.set('containerd.service', 'inactive');
    for (const u of ['cri-docker.service', 'docker.socket', 'docker.service']) host.units.set(u, 'active');
    const ctx = await ctxFor(host);
    expect(bare((await planned(ctx, stopRuntime)).steps)).toEqual([
      { argv: ['systemctl', 'stop', 'cri-docker.service', 'docker.socket', 'docker.service'] },
    ]);
    expect(bare((await startRuntime.plan(ctx)).steps)).toEqual([
      { argv: ['systemctl', 'start', 'docker.service', 'docker.socket', 'cri-docker.service'] },
    ]);
  });

  it('both stop phases ask systemd one question (kubelet and runtime units together), which the host answers once', async () => {
    const host = foreignNode();
    host.units.set('containerd.service', 'active');
    const ctx = await ctxFor(host);
    expect(bare((await planned(ctx, stopKubelet)).steps)).toEqual([{ argv: ['systemctl', 'stop', 'kubelet.service'] }]);
    expect(bare((await planned(ctx, stopRuntime)).steps)).toEqual([{ argv: ['systemctl', 'stop', 'containerd.service'] }]);
    const asked = host.queries.filter((q) => q[0] === 'systemctl').map((q) => q.join(' '));
    expect(new Set(asked)).toEqual(
      new Set(['systemctl is-active kubelet.service cri-docker.service docker.socket docker.service containerd.service crio.service']),
    );
  });

  it("stopping containerd while no kubelet runs declares that it changes no listing, only when systemd reports its unit's KillMode=process", async () => {
    const touches = async (setup: (h: ReturnType<typeof foreignNode>) => void) => {
      const host = foreignNode();
      host.units.set('kubelet.service', 'inactive');
      host.units.set('containerd.service', 'active');
      setup(host);
      const step = (await stopRuntime.plan(await ctxFor(host))).steps[0]!;
      return { argv: step.argv.join(' '), touches: step.touches };
    };
    // Its shims, and so the pods and their networks, outlive it: the cleanup plans on what was read.
    expect(await touches((h) => h.killModes.set('containerd.service', 'process'))).toEqual({
      argv: 'systemctl stop containerd.service',
      touches: [],
    });
    // systemd's default (control-group) kills the shims too; kubelet running tears pods down on its own;
    // CRI-O and Docker are not known to keep their pods: every listing is stale after the stop.
    expect((await touches(() => {})).touches).toBeUndefined();
    expect(
      (
        await touches((h) => {
          h.killModes.set('containerd.service', 'process');
          h.units.set('kubelet.service', 'active');
        })
      ).touches,
    ).toBeUndefined();
    expect(
      await touches((h) => {
        h.units.set('containerd.service', 'inactive');
        h.units.set('crio.service', 'active');
        h.killModes.set('crio.service', 'process');
      }),
    ).toEqual({ argv: 'systemctl stop crio.service', touches: undefined });
  });

  it('stops a unit waiting out its restart delay (activating) or reloading, which systemd would start mid-cleanup; not one being stopped', async () => {
    for (const [state, stops] of [
      ['activating', true],
      ['reloading', true],
      ['deactivating', false],
      ['failed', false],
    ] as const) {
      const host = foreignNode();
      host.units.set('kubelet.service', state);
      const plan = await stopKubelet.plan(await ctxFor(host));
      expect(plan.steps.map((st) => st.argv.join(' '))).toEqual(stops ? ['systemctl stop kubelet.service'] : []);
    }
  });

  it("waits for systemctl stop and start past systemd's own stop timeout (90 s), not the 60 s of other commands", async () => {
    const host = foreignNode();
    host.units.set('kubelet.service', 'active');
    host.units.set('containerd.service', 'active');
    const ctx = await ctxFor(host);
    const stop = (await stopKubelet.plan(ctx)).steps[0]!;
    expect(stop.argv).toEqual(['systemctl', 'stop', 'kubelet.service']);
    expect(stop.timeoutMs).toBeGreaterThan(90_000);
    ctx.stopped.runtime.push('containerd.service');
    const start = (await startRuntime.plan(ctx)).steps[0]!;
    expect(start.argv).toEqual(['systemctl', 'start', 'containerd.service']);
    expect(start.timeoutMs).toBeGreaterThan(90_000);
  });

  it('says why it stops nothing', async () => {
    const host = foreignNode();
    host.units.clear();
    const ctx = await ctxFor(host);
    expect(await stopKubelet.plan(ctx)).toEqual({ steps: [], notes: ['kubelet.service is not running'] });
    expect(await stopRuntime.plan(ctx)).toEqual({ steps: [], notes: ['no container runtime is running'] });
    expect(await startRuntime.plan(ctx)).toEqual({ steps: [], notes: [] });
    expect(await stopKubelet.plan(await ctxFor(foreignNode().removeBinary('systemctl')))).toEqual({
      steps: [],
      notes: ['not stopping kubelet.service: systemctl is not installed'],
      warnings: [
        'kubelet and the container runtime are not stopped (systemctl is not installed): stop them before the cleanup (or it runs beside a kubelet that sets pods up again), and start them after',
      ],
    });
  });

  it('does not even look at services when there is nothing to remove', async () => {
    const host = foreignNode();
    const ctx = await ctxFor(host, { hasWork: false });
    expect(await stopKubelet.plan(ctx)).toEqual({ steps: [], notes: [] });
    expect(await stopRuntime.plan(ctx)).toEqual({ steps: [], notes: [] });
    expect(host.queries.filter((q) => q[0] === 'systemctl')).toEqual([]);
  });
});

describe('drain', () => {
  it('drains with the given kubeconfig and its own timeout', async () => {
    const ctx = await ctxFor(foreignNode(), { opts: { drainTimeoutSec: 120 } });
    const plan = await drain.plan(ctx);
    expect(plan.steps).toEqual([
      {
        argv: [
          'kubectl',
          '--kubeconfig',
          '/root/.kube/config',
          'drain',
          'node-1',
          '--ignore-daemonsets',
          '--delete-emptydir-data',
          '--timeout=120s',
        ],
        timeoutMs: 150_000,
      },
    ]);
    // What uncordon reads: the runner records it for the phases after drain.
    expect(plan.facts).toEqual({ drained: true });
  });

  it("falls back to the control plane's admin.conf under --root", async () => {
    const host = new FakeHost({ root: '/srv/node' }).writeFile('/etc/kubernetes/admin.conf', 'apiVersion: v1\n');
    const plan = await drain.plan(await ctxFor(host, { opts: { kubeconfig: undefined } }));
    expect(plan.steps[0]!.argv.slice(0, 3)).toEqual(['kubectl', '--kubeconfig', '/srv/node/etc/kubernetes/admin.conf']);
  });

  it('says why it does not drain', async () => {
    const ctx = await ctxFor(foreignNode(), { opts: { kubeconfig: undefined } });
    const plan = await drain.plan(ctx);
    expect(plan).toEqual({
      steps: [],
      notes: ['not draining: no kubeconfig found (--kubeconfig, $KUBECONFIG or /etc/kubernetes/admin.conf)'],
      warnings: [
        'the node will not be drained: its pods lose networking (no kubeconfig found (--kubeconfig, $KUBECONFIG or /etc/kubernetes/admin.conf); pass --kubeconfig, or --skip drain)',
      ],
    });
    expect(plan.facts?.drained).toBeUndefined();
    expect(await drain.plan(await ctxFor(foreignNode().removeBinary('kubectl')))).toEqual({
      steps: [],
      notes: ['not draining: kubectl is not installed'],
    });
  });

  it('refuses a run nobody confirms (--yes) without a kubeconfig: its pods would lose networking unseen', async () => {
    const err = await drain
      .plan(await ctxFor(foreignNode(), { opts: { kubeconfig: undefined, refuseUndrained: true } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as RefusedError).message).toBe(
      'the node will not be drained: its pods lose networking (no kubeconfig found (--kubeconfig, $KUBECONFIG or /etc/kubernetes/admin.conf)); nothing was changed',
    );
    expect((err as RefusedError).hint).toMatch(/--kubeconfig <file>.*--skip drain/);
    // admin.conf on the node is a kubeconfig too: then it drains.
    const host = foreignNode().writeFile('/etc/kubernetes/admin.conf', 'apiVersion: v1\n');
    const plan = await drain.plan(await ctxFor(host, { opts: { kubeconfig: undefined, refuseUndrained: true } }));
    expect(plan.steps[0]!.argv.slice(0, 4)).toEqual(['kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf', 'drain']);
  });

  it('does not drain a node with nothing to remove', async () => {
    expect(await drain.plan(await ctxFor(foreignNode(), { hasWork: false }))).toEqual({ steps: [], notes: [] });
  });
});

describe('uncordon', () => {
  it('leaves the node cordoned without --uncordon, and says how to finish', async () => {
    expect(await uncordon.plan(await ctxFor(foreignNode(), { drained: true }))).toEqual({
      steps: [],
      notes: ['leaving node-1 cordoned: pass --uncordon, or run kubectl uncordon once the new CNI is in place'],
    });
    expect(await uncordon.plan(await ctxFor(foreignNode()))).toEqual({ steps: [], notes: [] });
  });

  it("uncordons with --uncordon when a pod network's config stays", async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    const plan = await uncordon.plan(await ctxFor(host, { drained: true, opts: { uncordon: true } }));
    expect(plan.steps).toEqual([{ argv: ['kubectl', '--kubeconfig', '/root/.kube/config', 'uncordon', 'node-1'] }]);
  });

  it('refuses to uncordon a node left without any CNI config', async () => {
    const { host } = dirtyFlannelNode();
    const err = await uncordon.plan(await ctxFor(host, { drained: true, opts: { uncordon: true } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PhaseFailedError);
    expect((err as Error).message).toBe(
      'phase uncordon failed: refusing to uncordon: no CNI config of a pod network left in /etc/cni/net.d; install the new CNI first, then run kubectl uncordon node-1',
    );
  });

  it("refuses to uncordon onto podman's bridge: a config no pod network owns does not count", async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    const err = await uncordon.plan(await ctxFor(host, { drained: true, opts: { uncordon: true } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PhaseFailedError);
    expect((err as Error).message).toBe(
      'phase uncordon failed: refusing to uncordon: no CNI config of a pod network left in /etc/cni/net.d (only /etc/cni/net.d/87-podman-bridge.conflist, which no pod network cni-sweep knows owns); install the new CNI first, then run kubectl uncordon node-1',
    );
  });

  it('does not uncordon a node this run did not drain', async () => {
    expect(await uncordon.plan(await ctxFor(foreignNode(), { opts: { uncordon: true } }))).toEqual({
      steps: [],
      notes: ['the node was not drained by this run'],
    });
  });
});

describe('remove-sandboxes', () => {
  /** A Flannel node whose runtime runs pods of Flannel's, of Calico's (a cali veth), and on the host's network. */
  function mixedNode() {
    const { host, pods } = dirtyFlannelNode();
    host.addLink({ ifname: 'cali0123456789a', link_netnsid: 7, linkinfo: { info_kind: 'veth' } });
    const inside = (peer: string) => [
      { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'] },
      { ifindex: 2, ifname: 'eth0', link_index: host.link(peer)!.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
    ];
    const nsOf = (name: string) => host.addNetns(name).realPath(`/run/netns/${name}`);
    const flannelNs = host.realPath(`/run/netns/${pods[0]!.netns}`);
    host.netnsLinks.set(flannelNs, inside(pods[0]!.veth));
    const calicoNs = nsOf('cni-calico00');
    host.netnsLinks.set(calicoNs, inside('cali0123456789a'));
    // A Calico pod whose pool lies inside Flannel's network: its veth says whose it is.
    const overlapNs = nsOf('cni-calico01');
    host.netnsLinks.set(overlapNs, inside('cali0123456789a'));
    // A Flannel pod whose veth is gone already: only lo inside, its IP says whose it is.
    const loOnlyNs = nsOf('cni-loonly00');
    host.netnsLinks.set(loOnlyNs, [{ ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'] }]);
    host.sandboxes = ['flan1', 'calico1', 'overlap1', 'loonly1', 'hostnet1', 'stopped1'];
    host.pods.set('flan1', { name: 'web-1', namespace: 'default', ip: pods[0]!.ip, netns: flannelNs });
    host.pods.set('calico1', { name: 'api-1', namespace: 'prod', ip: '172.20.5.2', netns: calicoNs });
    host.pods.set('overlap1', { name: 'api-2', namespace: 'prod', ip: '10.244.64.5', netns: overlapNs });
    host.pods.set('loonly1', { name: 'dns-1', namespace: 'kube-system', ip: pods[1]!.ip, netns: loOnlyNs });
    host.pods.set('hostnet1', { name: 'kube-proxy-x', namespace: 'kube-system', ip: '192.168.1.11', hostNetwork: true });
    host.pods.set('stopped1', { name: 'old-1', namespace: 'default', ip: '10.244.1.9', state: 'SANDBOX_NOTREADY' });
    return { host, pods };
  }

  it("stops and removes exactly the READY sandboxes on the removed network; another CNI's and host-network ones stay", async () => {
    const { host, pods } = mixedNode();
    const plan = await removeSandboxes.plan(await ctxFor(host));
    expect(bare(plan.steps)).toEqual([{ argv: ['crictl', 'stopp', 'flan1', 'loonly1'] }, { argv: ['crictl', 'rmp', 'flan1', 'loonly1'] }]);
    expect(plan.steps[1]!.removes?.items).toEqual([`default/web-1 (${pods[0]!.ip})`, `kube-system/dns-1 (${pods[1]!.ip})`]);
    expect(plan.notes).toEqual([
      "kept pod sandbox prod/api-1 (172.20.5.2): its pod interface pairs with cali0123456789a, which is not the removed CNI's",
      "kept pod sandbox prod/api-2 (10.244.64.5): its pod interface pairs with cali0123456789a, which is not the removed CNI's",
    ]);
    expect(plan.podsWithoutNetwork).toBeUndefined();
    await apply(host, plan.steps);
    expect(host.sandboxes).toEqual(['calico1', 'overlap1', 'hostnet1', 'stopped1']);
  });

  it('--keep-sandboxes removes none, warns, and lists the pods left without a network', async () => {
    const { host, pods } = mixedNode();
    const plan = await removeSandboxes.plan(await ctxFor(host, { opts: { keepSandboxes: true } }));
    expect(plan.steps).toEqual([]);
    const warning = `--keep-sandboxes: 2 pods on the removed network keep running without a network: default/web-1 (${pods[0]!.ip}), kube-system/dns-1 (${pods[1]!.ip})`;
    expect(plan.warnings).toEqual([warning]);
    expect(plan.notes[0]).toBe(warning);
    expect(plan.podsWithoutNetwork).toEqual([
      { id: 'flan1', name: 'web-1', namespace: 'default', ip: pods[0]!.ip },
      { id: 'loonly1', name: 'dns-1', namespace: 'kube-system', ip: pods[1]!.ip },
    ]);
  });

  it('without crictl, or with the runtime not answering, lists the pods the removed network still holds addresses for', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.writeFile(
      `/var/lib/cni/results/cbr0-${pods[0]!.cid}-eth0`,
      JSON.stringify({
        kind: 'cniCacheV1',
        cniArgs: [
          ['K8S_POD_NAMESPACE', 'default'],
          ['K8S_POD_NAME', 'web-1'],
        ],
      }),
      0o600,
    );
    host.removeBinary('crictl');
    const plan = await removeSandboxes.plan(await ctxFor(host));
    expect(plan.steps).toEqual([]);
    expect(plan.podsWithoutNetwork).toEqual([
      { id: pods[0]!.cid, ip: pods[0]!.ip, name: 'web-1', namespace: 'default' },
      { id: pods[1]!.cid, ip: pods[1]!.ip },
    ]);
    expect(plan.warnings?.[0]).toMatch(/^crictl is not installed: pod sandboxes cannot be removed through the CRI; 2 pods hold addresses/);
    expect(plan.warnings?.[0]).toMatch(/crictl stopp <ids> && crictl rmp <ids>, or delete the pods$/);
  });

  it('says why it removes none, without listing the links when no sandbox has a pod interface to match', async () => {
    const { host } = dirtyFlannelNode();
    expect(await removeSandboxes.plan(await ctxFor(host))).toEqual({ steps: [], notes: ['no running pod sandboxes'] });
    host.sandboxes = ['hostnet1'];
    host.pods.set('hostnet1', { name: 'kube-proxy-x', namespace: 'kube-system', ip: '192.168.1.11', hostNetwork: true });
    expect(await removeSandboxes.plan(await ctxFor(host))).toEqual({ steps: [], notes: [] });
    expect(host.queries.filter((q) => q.join(' ').includes('link show'))).toEqual([]);
    expect(await removeSandboxes.plan(await ctxFor(host, { hasWork: false }))).toEqual({ steps: [], notes: [] });
  });
});

describe('modules (opt-in)', () => {
  it('has nothing to unload for Flannel, and does not even list modules', async () => {
    const { host } = dirtyFlannelNode();
    host.modules.set('vxlan', { refs: 0 });
    expect(await modules.plan(await ctxFor(host))).toEqual({ steps: [], notes: [] });
    expect(host.queries.filter((q) => q[0] === 'lsmod')).toEqual([]);
  });
});

describe('what steps declare they touch', () => {
  // The real host trusts the declaration for which answers stay valid after a step and for which
  // files it unlinks itself: each cleanup step says it, and a removal names exactly its argv's paths.
  it('every cleanup step of a dirty Flannel node declares the kinds of state it changes, and its unlinks match its rm', async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    const ctx = await ctxFor(host);
    const declared: Array<{ phase: string; cmd: string; touches?: string[]; unlinks?: boolean }> = [];
    for (const phase of [cniConfig, cniState, interfaces, routes, firewall, netns]) {
      for (const s of (await phase.plan(ctx)).steps) {
        declared.push({
          phase: phase.name,
          cmd: s.argv.slice(0, 2).join(' '),
          touches: s.touches,
          ...(s.unlinks ? { unlinks: true } : {}),
        });
        if (s.unlinks) expect(s.argv).toEqual(['rm', '-f', '--', ...s.unlinks]);
      }
    }
    expect(declared).toEqual([
      { phase: 'cni-config', cmd: 'rm -f', touches: ['files'], unlinks: true },
      { phase: 'cni-state', cmd: 'rm -rf', touches: ['files'] },
      { phase: 'interfaces', cmd: 'ip -batch', touches: ['links'] },
      { phase: 'routes', cmd: 'ip -batch', touches: ['routes'] },
      { phase: 'firewall', cmd: 'iptables-nft-restore --noflush', touches: ['firewall'] },
      { phase: 'firewall', cmd: 'ip6tables-nft-restore --noflush', touches: ['firewall'] },
      { phase: 'firewall', cmd: 'nft -f', touches: ['nft'] },
      { phase: 'netns', cmd: 'umount --lazy', touches: ['namespaces'] },
      { phase: 'netns', cmd: 'rm -f', touches: ['namespaces', 'files'], unlinks: true },
    ]);
  });
});

describe('checkBackupDir', () => {
  // Real directories: what counts is where the removed paths lead once symlinks are resolved.
  it('finds a backup inside a removed tree whatever leads there: the path, a symlinked directory above it, or the removed path being a symlink', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-backupdir-'));
    try {
      const real = path.join(tmp, 'real');
      fs.mkdirSync(path.join(real, 'state/backups'), { recursive: true });
      fs.symlinkSync(real, path.join(tmp, 'via')); // a directory above the removed path is a symlink
      fs.symlinkSync(path.join(real, 'state'), path.join(tmp, 'state-link')); // the removed path itself is one
      const backup = path.join(real, 'state/backups');
      const removed =
        (...paths: string[]) =>
        () => {
          checkBackupDir(backup, paths, []);
        };
      expect(removed(path.join(real, 'state'))).toThrow(/is inside .*\/real\/state, which this run removes$/);
      expect(removed(path.join(tmp, 'via/other'), path.join(tmp, 'via/state'))).toThrow(/is inside .*\/via\/state, which/);
      expect(removed(path.join(tmp, 'state-link'))).toThrow(/is inside .*\/state-link, which/);
      // Hundreds of removed paths in one directory, none of them above the backup: fine.
      const many = Array.from({ length: 300 }, (_, i) => path.join(tmp, 'via', `cache-${i}`));
      expect(removed(...many, path.join(tmp, 'missing/dir/file'))).not.toThrow();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
