// Cilium on the fake host, including what this kernel cannot create for the integration tests
// (cilium_wg0, the renamed fallback tunnels) and the decisions about configs it set aside, its
// cgroup2 mount and its pidfile.
import { describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { Gaps } from '../../src/inspect.js';
import { cniConfig } from '../../src/phases/cni-config.js';
import { cniState } from '../../src/phases/cni-state.js';
import { interfaces } from '../../src/phases/interfaces.js';
import { removalTargets } from '../../src/phases/preflight.js';
import { detect } from '../../src/profiles/detect.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { chooseTargets } from '../../src/profiles/targets.js';
import { RefusedError } from '../../src/errors.js';
import { CILIUM_CONFLIST, MACVLAN_CONF } from '../helpers/cilium-node.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { FLANNEL_CONFLIST, PODMAN_CONFLIST } from '../helpers/flannel-node.js';
import { thickConf, thinConf } from '../helpers/multus-node.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';
import { ctxFor } from './helpers.js';

const profiles = loadProfiles();
const CILIUM = profiles.find((p) => p.name === 'cilium')!;
const FLANNEL = profiles.find((p) => p.name === 'flannel')!;
const bare = (steps: Array<{ argv: string[]; stdin?: string }>) =>
  steps.map((s) => (s.stdin === undefined ? { argv: s.argv } : { argv: s.argv, stdin: s.stdin }));
const CONF = '/etc/cni/net.d';

/** Cilium's config and state on a node with nothing else of a CNI's. */
function ciliumNode(host: FakeHost = foreignNode()): FakeHost {
  return host
    .writeFile(`${CONF}/05-cilium.conflist`, CILIUM_CONFLIST)
    .writeFile('/var/run/cilium/cilium.pid', '4242\n')
    .writeFile('/var/run/cilium/state/health-endpoint.state', 'ok\n')
    .writeFile('/var/lib/cilium/bpf/bpf_lxc.c', '/* datapath */\n')
    .mkdir('/run/cilium/cgroupv2');
}

describe('the Cilium profile', () => {
  it("owns lxc + 12 hex (today's names), lxc + 5 (before sha256 names) and lxc_health, never lxcfoo, lxcbr0 or longer names", () => {
    const own = (n: string) => CILIUM.interfaces.names.includes(n) || CILIUM.interfaces.patterns.some((p) => new RegExp(p).test(n));
    for (const n of [
      'lxc0a1b2c3d4e5f',
      'lxc1a2b3',
      'lxc_health',
      'cilium_host',
      'cilium_net',
      'cilium_vxlan',
      'cilium_geneve',
      'cilium_wg0',
    ])
      expect(own(n), n).toBe(true);
    for (const n of ['lxcfoo', 'lxcbr0', 'lxc0a1b2c3d4e5f0', 'lxc0A1B2C3D4E5F', 'lxc1a2b', 'lxc-health', 'cilium_foo'])
      expect(own(n), n).toBe(false);
  });

  it('deletes cilium_wg0 and the pod veths with the rest, and only takes the renamed fallback tunnels out of service', async () => {
    const host = ciliumNode()
      .addLink({ ifname: 'cilium_host', link: 'cilium_net', linkinfo: { info_kind: 'veth' } })
      .addLink({ ifname: 'cilium_net', link: 'cilium_host', linkinfo: { info_kind: 'veth' } })
      .addLink({ ifname: 'cilium_wg0', linkinfo: { info_kind: 'wireguard' } })
      .addLink({ ifname: 'lxc0a1b2c3d4e5f', link_netnsid: 1, linkinfo: { info_kind: 'veth' } })
      .addLink({ ifname: 'cilium_tunl', linkinfo: { info_kind: 'ipip' } })
      .addLink({ ifname: 'cilium_sit', flags: ['NOARP'], linkinfo: { info_kind: 'sit' } })
      .addLink({ ifname: 'lxcfoo', linkinfo: { info_kind: 'veth' } });
    const plan = await interfaces.plan(await ctxFor(host, { profiles: [CILIUM] }));
    expect(bare(plan.steps)).toEqual([
      {
        argv: ['ip', '-batch', '-'],
        stdin: [
          'link set dev cilium_host group 4242424',
          'link set dev cilium_net group 4242424',
          'link set dev cilium_wg0 group 4242424',
          'link set dev lxc0a1b2c3d4e5f group 4242424',
          'link delete group 4242424',
          // up: set down; cilium_sit is down and has no address: nothing to do.
          'link set cilium_tunl down',
          '',
        ].join('\n'),
      },
    ]);
  });
});

describe('configs Cilium set aside (*.cilium_bak)', () => {
  it("--cni cilium puts back another network's, removes its own, keeps one whose name is taken and one it cannot parse, and ignores names that are no config", async () => {
    const host = ciliumNode()
      .writeFile(`${CONF}/20-lan.conf.cilium_bak`, MACVLAN_CONF)
      .writeFile(`${CONF}/05-cilium.conf.cilium_bak`, '{ "cniVersion": "0.3.1", "name": "cilium", "type": "cilium-cni" }')
      .writeFile(`${CONF}/87-podman-bridge.conflist`, PODMAN_CONFLIST)
      .writeFile(`${CONF}/87-podman-bridge.conflist.cilium_bak`, PODMAN_CONFLIST)
      .writeFile(`${CONF}/30-broken.conflist.cilium_bak`, '{ not json')
      .writeFile(`${CONF}/README.cilium_bak`, 'notes\n');
    const ctx = await ctxFor(host, { profiles: [CILIUM] });
    const plan = await cniConfig.plan(ctx);
    expect(plan.notes).toEqual([
      "removes /etc/cni/net.d/05-cilium.conf.cilium_bak: cilium's config, which cilium set aside: it goes with cilium",
      'puts back /etc/cni/net.d/20-lan.conf.cilium_bak: the config of network "lan" (plugins macvlan), which cilium set aside when it took over the node: put back under its name, as cilium\'s own cleanup does',
      // JSON.parse's wording changes with Node's version.
      expect.stringMatching(
        /^kept \/etc\/cni\/net\.d\/30-broken\.conflist\.cilium_bak: \/etc\/cni\/net\.d\/30-broken\.conflist: not valid JSON \(.*\): whose config it is cannot be told, so it stays$/,
      ),
      'kept /etc/cni/net.d/87-podman-bridge.conflist.cilium_bak: the config of network "podman" (plugins bridge, portmap, firewall, tuning), which cilium set aside; 87-podman-bridge.conflist exists again, so it is not put back over it: compare the two and keep one',
    ]);
    expect(bare(plan.steps)).toEqual([
      { argv: ['rm', '-f', '--', `${CONF}/05-cilium.conflist`, `${CONF}/05-cilium.conf.cilium_bak`] },
      { argv: ['mv', '-n', '-T', '--', `${CONF}/20-lan.conf.cilium_bak`, `${CONF}/20-lan.conf`] },
    ]);
    expect(plan.steps[0]!.backup).toEqual({ files: [`${CONF}/05-cilium.conflist`, `${CONF}/05-cilium.conf.cilium_bak`] });
    // The runtime's first config after the run is the one put back: no pod network, and the warning says so.
    expect(ctx.snapshot.remainingConfigs.map((c) => c.file)).toEqual([`${CONF}/20-lan.conf`, `${CONF}/87-podman-bridge.conflist`]);
    expect(plan.warnings?.[0]).toMatch(
      /^after the removal the runtime's first CNI config is \/etc\/cni\/net\.d\/20-lan\.conf \(network lan/,
    );

    for (const s of plan.steps) await host.apply(s);
    expect(await host.readFile(`${CONF}/20-lan.conf`)).toBe(MACVLAN_CONF);
    expect((await host.readDir(CONF))!.map((e) => e.name)).toEqual([
      '20-lan.conf',
      '30-broken.conflist.cilium_bak',
      '87-podman-bridge.conflist',
      '87-podman-bridge.conflist.cilium_bak',
      'README.cilium_bak',
      'README.site',
    ]);
    // Run again: nothing left to change.
    expect((await cniConfig.plan(await ctxFor(host, { profiles: [CILIUM] }))).steps).toEqual([]);
  });

  it("--cni cilium does not put a config back in front of a pod network's config that stays: the runtime would load it instead", async () => {
    // Calico, then Cilium (which set Calico's aside), then Flannel, installed since: its config stays.
    const host = ciliumNode()
      .writeFile(`${CONF}/10-calico.conflist.cilium_bak`, CALICO_CONFLIST)
      .writeFile(`${CONF}/10-flannel.conflist`, FLANNEL_CONFLIST)
      .writeFile(`${CONF}/20-lan.conf.cilium_bak`, MACVLAN_CONF);
    const ctx = await ctxFor(host, { profiles: [CILIUM] });
    const plan = await cniConfig.plan(ctx);
    expect(plan.notes).toEqual([
      "kept /etc/cni/net.d/10-calico.conflist.cilium_bak: calico's config, which cilium set aside; put back as 10-calico.conflist, it would sort before /etc/cni/net.d/10-flannel.conflist (flannel's config), which stays, and the runtime would load it instead: it stays set aside (rename it back by hand if that is the network you want)",
      'puts back /etc/cni/net.d/20-lan.conf.cilium_bak: the config of network "lan" (plugins macvlan), which cilium set aside when it took over the node: put back under its name, as cilium\'s own cleanup does',
    ]);
    expect(bare(plan.steps)).toEqual([
      { argv: ['rm', '-f', '--', `${CONF}/05-cilium.conflist`] },
      { argv: ['mv', '-n', '-T', '--', `${CONF}/20-lan.conf.cilium_bak`, `${CONF}/20-lan.conf`] },
    ]);
    expect(ctx.snapshot.remainingConfigs[0]!.file).toBe(`${CONF}/10-flannel.conflist`);
  });

  it('--cni cilium does not put back a Multus config that hands pods to Cilium: every new pod would fail in Multus', async () => {
    for (const conf of [thinConf(CILIUM_CONFLIST), thickConf('/host/etc/cni/net.d/05-cilium.conflist')]) {
      const host = ciliumNode().writeFile(`${CONF}/00-multus.conf.cilium_bak`, conf);
      const ctx = await ctxFor(host, { profiles: [CILIUM] });
      const plan = await cniConfig.plan(ctx);
      expect(plan.notes).toEqual([
        expect.stringMatching(
          /^kept \/etc\/cni\/net\.d\/00-multus\.conf\.cilium_bak: multus's config, which cilium set aside, hands pods to cilium \((its first delegate, embedded in it|its clusterNetwork \/host\/etc\/cni\/net\.d\/05-cilium\.conflist \(\/etc\/cni\/net\.d\/05-cilium\.conflist\))\), which this run removes: put back, every new pod would fail in Multus, so it stays set aside$/,
        ),
      ]);
      expect(bare(plan.steps)).toEqual([{ argv: ['rm', '-f', '--', `${CONF}/05-cilium.conflist`] }]);
      expect(ctx.snapshot.remainingConfigs).toEqual([]);
    }
  });

  it("a Flannel run beside a live Cilium removes Flannel's set-aside config with Flannel and leaves the others to Cilium", async () => {
    const { host } = dirtyFlannelNode();
    ciliumNode(host)
      .writeFile(`${CONF}/10-flannel.conflist.cilium_bak`, FLANNEL_CONFLIST)
      .writeFile(`${CONF}/20-lan.conf.cilium_bak`, MACVLAN_CONF);
    const plan = await cniConfig.plan(await ctxFor(host, { profiles: [FLANNEL] }));
    expect(plan.notes).toEqual([
      "removes /etc/cni/net.d/10-flannel.conflist.cilium_bak: flannel's config, which cilium set aside: it goes with flannel",
    ]);
    expect(bare(plan.steps)).toEqual([
      { argv: ['rm', '-f', '--', `${CONF}/10-flannel.conflist`, `${CONF}/10-flannel.conflist.cilium_bak`] },
    ]);
  });

  it('set-aside configs alone are evidence of Cilium: removing it is what puts them back', async () => {
    const host = foreignNode().writeFile(`${CONF}/10-calico.conflist.cilium_bak`, '{}');
    expect((await detect(host, profiles, new Gaps())).map((d) => [d.profile.name, d.evidence])).toEqual([
      ['cilium', ['set-aside config /etc/cni/net.d/10-calico.conflist.cilium_bak']],
    ]);
  });
});

describe("Cilium's cgroup2 mount", () => {
  it('is unmounted before /run/cilium goes, and the backup keeps what is around it, never what is below it', async () => {
    const host = ciliumNode().writeFile('/run/cilium/cgroupv2/cgroup.procs', '1\n').writeFile('/run/cilium/bpffs.README', 'x\n');
    host.mounts.add('/run/cilium/cgroupv2');
    const plan = await cniState.plan(await ctxFor(host, { profiles: [CILIUM] }));
    expect(plan.notes).toEqual(['unmounts /run/cilium/cgroupv2 (a mount point) before /run/cilium is removed']);
    expect(bare(plan.steps)).toEqual([
      { argv: ['umount', '--lazy', '--', '/run/cilium/cgroupv2'] },
      { argv: ['rm', '-rf', '--', '/var/run/cilium', '/run/cilium', '/var/lib/cilium'] },
    ]);
    expect(plan.steps[1]!.backup).toEqual({ files: ['/var/run/cilium', '/run/cilium/bpffs.README', '/var/lib/cilium'] });
    // Preflight asks the kernel about the tree with the mount point left out of it.
    expect(removalTargets([{ plan }])).toEqual([
      { path: '/var/run/cilium', tree: true },
      { path: '/run/cilium', tree: true },
      { path: '/var/lib/cilium', tree: true },
      { path: '/run/cilium/cgroupv2', tree: false, unmounted: true },
    ]);
    for (const s of plan.steps) await host.apply(s);
    expect(host.mounts.has('/run/cilium/cgroupv2')).toBe(false);
    expect(await host.entryType('/run/cilium')).toBeNull();
  });

  it('a plain directory of that name is removed without any umount', async () => {
    const plan = await cniState.plan(await ctxFor(ciliumNode(), { profiles: [CILIUM] }));
    expect(plan.notes).toEqual([]);
    expect(bare(plan.steps)).toEqual([{ argv: ['rm', '-rf', '--', '/var/run/cilium', '/run/cilium', '/var/lib/cilium'] }]);
  });
});

describe("Cilium's pidfile", () => {
  const named = (host: FakeHost) => chooseTargets(host, { named: [CILIUM] });

  it('naming a process in this network namespace makes Cilium live, whatever the process is called', async () => {
    const host = ciliumNode().addProcess(['/usr/bin/agent-x'], { pid: 4242 });
    await expect(named(host)).rejects.toThrow(
      '--cni cilium: cilium is live on this node: its pidfile /var/run/cilium/cilium.pid names agent-x (pid 4242), which runs; cni-sweep never removes a live CNI',
    );
    expect(await chooseTargets(host, { detected: await detect(host, profiles, new Gaps()) })).toEqual([
      {
        cni: 'cilium',
        action: 'keep',
        why: 'live: its pidfile /var/run/cilium/cilium.pid names agent-x (pid 4242), which runs; stop it for good first (helm uninstall cilium -n kube-system (cilium CLI installs: cilium uninstall; manifests: kubectl -n kube-system delete daemonset cilium)), wait for its pods to go, then run again',
      },
    ]);
  });

  it('says nothing when its pid is gone, runs in another network namespace, or it holds no pid', async () => {
    for (const [text, other] of [
      ['4242\n', false],
      ['4243\n', true],
      ['garbage\n', false],
    ] as const) {
      const host = ciliumNode().writeFile('/var/run/cilium/cilium.pid', text);
      if (text === '4243\n') host.addProcess(['agent-x'], { pid: 4243, otherNetns: other });
      expect((await named(host))[0]!.action, text).toBe('remove');
    }
  });

  it('the agent process alone makes it live too', async () => {
    const host = ciliumNode()
      .writeFile('/var/run/cilium/cilium.pid', '1\n')
      .addProcess(['cilium-agent', '--config-dir=/tmp/cilium/config-map'], { pid: 77 });
    await expect(named(host)).rejects.toThrow('--cni cilium: cilium is live on this node: its agent runs: cilium-agent (pid 77)');
  });
});

describe('a config Cilium shares with a CNI this run keeps (chaining on Flannel)', () => {
  // Cilium's chaining mode: Flannel's conflist with cilium-cni appended; Flannel keeps running.
  const CHAINED = JSON.stringify({
    cniVersion: '0.3.1',
    name: 'cbr0',
    plugins: [
      { type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'cilium-cni', chaining: 'generic-veth' },
    ],
  });
  const CACHE = `/var/lib/cni/results/cbr0-${'a'.repeat(64)}-eth0`;
  const chainedNode = () =>
    foreignNode()
      .writeFile(`${CONF}/04-flannel-cilium-cni.conflist`, CHAINED)
      .writeFile(CACHE, '{"kind":"cniCacheV1"}', 0o600)
      .writeFile('/var/lib/cilium/bpf/bpf_lxc.c', '/* datapath */\n');

  it('--cni cilium keeps the chained config and its network state, says why and how to remove both', async () => {
    const host = chainedNode();
    const ctx = await ctxFor(host, { profiles: [CILIUM] });
    const config = await cniConfig.plan(ctx);
    expect(bare(config.steps)).toEqual([]);
    expect(config.notes).toContain(
      `kept ${CONF}/04-flannel-cilium-cni.conflist: flannel's config too (a chained config), and this run keeps flannel; it stays, with its network's state (to remove both: --cni cilium,flannel)`,
    );
    const state = await cniState.plan(ctx);
    expect(state.steps.flatMap((s) => s.argv)).not.toContain(CACHE);
    expect(state.steps.flatMap((s) => s.argv)).toContain('/var/lib/cilium');
    expect(ctx.snapshot.remainingConfigs.map((c) => c.file)).toEqual([`${CONF}/04-flannel-cilium-cni.conflist`]);
  });

  it('--cni flannel alone refuses: the chained config stays with cilium, and its first plugin, flannel, needs what a run would remove', async () => {
    const host = chainedNode();
    const err = await chooseTargets(host, { named: [FLANNEL] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as RefusedError).message).toBe(
      `--cni flannel: ${CONF}/04-flannel-cilium-cni.conflist is cilium's config too (a chained config), which stays with cilium, and it needs flannel's state: removing flannel alone would leave its pods and every new one without a network`,
    );
    // The chained plugin's CNI may go alone, and both together.
    expect((await chooseTargets(host, { named: [CILIUM] })).map((t) => t.action)).toEqual(['remove']);
    expect((await chooseTargets(host, { named: [FLANNEL, CILIUM] })).map((t) => t.action)).toEqual(['remove', 'remove']);
  });

  it('--cni cilium,flannel removes it with both', async () => {
    const ctx = await ctxFor(chainedNode(), { profiles: [CILIUM, FLANNEL] });
    expect(bare((await cniConfig.plan(ctx)).steps)).toEqual([{ argv: ['rm', '-f', '--', `${CONF}/04-flannel-cilium-cni.conflist`] }]);
    expect((await cniState.plan(ctx)).steps.flatMap((s) => s.argv)).toContain(CACHE);
  });
});
