// The netns phase on a node where docker's and podman's containers sit beside the CNI's pods: their
// host veths have peers in other namespaces, so the phase must tell the CNI's namespaces from
// theirs. It learns every namespace file's id in one read, instead of entering each namespace.
import { describe, expect, it } from 'vitest';
import type { FakeHost } from '../../src/host/fake.js';
import { netns } from '../../src/phases/netns.js';
import type { PlannedStep } from '../../src/phases/types.js';
import { JOURNAL } from '../../src/journal.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';
import { ctxFor, runMain } from './helpers.js';
import { removalTargets } from '../../src/phases/preflight.js';
import { detachableMount } from '../../src/host/mounts.js';

const bare = (steps: PlannedStep[]) => steps.map((s) => s.argv);

/** The pod-side veth inside a namespace, paired with the host veth `peer`. */
const inside = (host: FakeHost, peer: string) => [
  { ifindex: 2, ifname: 'eth0', link_index: host.link(peer)!.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
];

/**
 * A Flannel node with `n` pods, plus docker containers (veths on docker0 whose peers are in
 * namespaces no file under /run/netns names), podman 4 containers (cni-podman0, netns-<uuid> files)
 * and one cni-* namespace of another runtime's container, on cni-podman0.
 */
function crowdedNode(n: number) {
  const { host, pods } = dirtyFlannelNode({ pods: n, podman: true });
  host.addLink({ ifname: 'cni-podman0', linkinfo: { info_kind: 'bridge' } });
  for (let i = 0; i < 3; i++)
    host.addLink({ ifname: `vethd${i}`, master: 'docker0', link_netnsid: 1000 + i, linkinfo: { info_kind: 'veth' } });
  for (let i = 0; i < 2; i++) {
    host.addLink({ ifname: `vethp${i}`, master: 'cni-podman0', link_netnsid: 2000 + i, linkinfo: { info_kind: 'veth' } });
    const f = `netns-0000000${i}-0000-0000-0000-000000000000`;
    host.addNetns(f);
    host.netnsLinks.set(host.realPath(`/run/netns/${f}`), inside(host, `vethp${i}`));
  }
  host.addLink({ ifname: 'vethother', master: 'cni-podman0', link_netnsid: 3000, linkinfo: { info_kind: 'veth' } });
  const other = 'cni-0000aaaa-0000-0000-0000-000000000000';
  host.addNetns(other);
  host.netnsLinks.set(host.realPath(`/run/netns/${other}`), inside(host, 'vethother'));
  for (const p of pods) host.netnsLinks.set(host.realPath(`/run/netns/${p.netns}`), inside(host, p.veth));
  return { host, pods, other };
}

const nsQueries = (host: FakeHost) => host.queries.filter((q) => q[0] === 'nsenter' || q[0] === 'unshare');

describe('netns beside docker and podman', () => {
  it('reads every namespace id in one process at 250 pods, and keeps exactly the other runtime’s cni-* namespace', async () => {
    const { host, pods, other } = crowdedNode(250);
    const ctx = await ctxFor(host);
    host.queries.length = 0;
    const plan = await netns.plan(ctx);
    const flannel = pods.map((p) => `/run/netns/${p.netns}`).sort();
    expect(bare(plan.steps)).toEqual([
      ...[0, 1, 2, 3].map((i) => ['umount', '--lazy', '--', ...flannel.slice(i * 63, i * 63 + 63)]),
      ['rm', '-f', '--', ...flannel],
    ]);
    expect(plan.notes).toEqual([`kept /run/netns/${other}: its pod interface pairs with vethother, which is not flannel's`]);
    expect(nsQueries(host)).toEqual([
      [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount --rbind -- "$1" /var/run/netns && exec ip -j netns list',
        'sh',
        '/run/netns',
      ],
    ]);
  });

  it('under --root, points the listing at the root’s netns directory', async () => {
    const { host } = dirtyFlannelNode({ pods: 2, root: '/srv/node' });
    host.addLink({ ifname: 'vethd0', master: 'docker0', link_netnsid: 1000, linkinfo: { info_kind: 'veth' } });
    const ctx = await ctxFor(host);
    host.queries.length = 0;
    const plan = await netns.plan(ctx);
    expect(plan.steps.at(-1)!.argv.slice(3)).toHaveLength(2);
    expect(nsQueries(host).map((q) => q.at(-1))).toEqual(['/srv/node/run/netns']);
  });

  it('without unshare, looks into each namespace, with the same decisions', async () => {
    const { host, pods, other } = crowdedNode(5);
    host.removeBinary('unshare');
    const ctx = await ctxFor(host);
    host.queries.length = 0;
    const plan = await netns.plan(ctx);
    const flannel = pods.map((p) => `/run/netns/${p.netns}`).sort();
    expect(bare(plan.steps)).toEqual([
      ['umount', '--lazy', '--', ...flannel],
      ['rm', '-f', '--', ...flannel],
    ]);
    expect(plan.notes).toEqual([`kept /run/netns/${other}: its pod interface pairs with vethother, which is not flannel's`]);
    expect(nsQueries(host).filter((q) => q[0] === 'nsenter')).toHaveLength(6);
  });

  it('with a symlink above /run/netns, nothing there is removed: its steps would follow it', async () => {
    const { host } = dirtyFlannelNode({ pods: 2 });
    expect((await netns.plan(await ctxFor(host))).steps).not.toEqual([]);
    host.symlink('/run/netns', '/srv/netns');
    const plan = await netns.plan(await ctxFor(host));
    expect(plan.steps).toEqual([]);
    expect(plan.notes).toEqual([
      'left alone: the namespaces in /run/netns: a directory above them is a symlink, and cni-sweep never follows one',
    ]);
  });

  it('a namespace a process uses stays, and is not looked into', async () => {
    const { host, pods } = crowdedNode(3);
    host.netnsUsed.add(host.realPath(`/run/netns/${pods[1]!.netns}`));
    const plan = await netns.plan(await ctxFor(host));
    expect(plan.notes[0]).toBe(`kept /run/netns/${pods[1]!.netns}: a running process still uses it`);
    expect(plan.steps.at(-1)!.argv).not.toContain(`/run/netns/${pods[1]!.netns}`);
    expect(plan.steps.at(-1)!.argv.slice(3)).toHaveLength(2);
  });
});

describe('a file named like a pod namespace that is none', () => {
  it('holding data (not a mount, not empty) stays, with why; the stale empty ones still go', async () => {
    const { host, pods } = crowdedNode(3);
    const name = 'cni-44444444-2222-3333-4444-555555555555';
    host.writeFile(`/run/netns/${name}`, 'notanetns\n');
    host.addNetns('cni-55555555-2222-3333-4444-555555555555', { mounted: false });
    const plan = await netns.plan(await ctxFor(host));
    expect(plan.notes).toContain(
      `kept /run/netns/${name}: it holds 10 bytes, so it is no network namespace (a namespace file is a mount, or empty)`,
    );
    const removed = plan.steps.at(-1)!.argv;
    expect(removed).not.toContain(`/run/netns/${name}`);
    expect(removed).toContain('/run/netns/cni-55555555-2222-3333-4444-555555555555');
    for (const p of pods) expect(removed).toContain(`/run/netns/${p.netns}`);
  });
});

/** The netns section of a plan script, from its heading to the end. */
const netnsSection = (script: string) => script.slice(script.indexOf('\n# == netns'));

describe('netns files on a mount of their own', () => {
  it('are removed by one process that unmounts their mount in a private mount namespace: the plan shows it, with why', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 3 });
    host.addNetns('cni-0000aaaa-0000-0000-0000-000000000000', { inUse: true });
    host.netnsDirMount = '/run';
    const r = await runMain(['plan', '--only', 'netns'], host);
    expect(r.code).toBe(0);
    const names = pods.map((p) => p.netns).sort();
    expect(netnsSection(r.stdout)).toBe(
      [
        '',
        '# == netns: remove stale cni-* pod network namespaces (after the runtime is stopped)',
        '# kept /run/netns/cni-0000aaaa-0000-0000-0000-000000000000: a running process still uses it',
        "# one process for all the namespace files: in a private mount namespace it unmounts the mount holding them (there only), then unlinks them by name, which detaches the node's mounts of each (Linux 3.18+); umount per file would read the whole mount table once per file",
        `unshare --mount --propagation private sh -c 'cd -- "$1" && umount --lazy -- "$2" && shift 2 && exec rm -f "$@"' sh /run/netns /run -- \\`,
        ...names.map((n, i) => `  ${n}${i < names.length - 1 ? ' \\' : ''}`),
        '',
      ].join('\n'),
    );
  });

  it('on the root mount, are unmounted with umount and removed with rm, as before', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 2 });
    const r = await runMain(['plan', '--only', 'netns'], host);
    const paths = pods.map((p) => `/run/netns/${p.netns}`).sort();
    expect(netnsSection(r.stdout)).toBe(
      [
        '',
        '# == netns: remove stale cni-* pod network namespaces (after the runtime is stopped)',
        'umount --lazy -- \\',
        `  ${paths[0]} \\`,
        `  ${paths[1]}`,
        'rm -f -- \\',
        `  ${paths[0]} \\`,
        `  ${paths[1]}`,
        '',
      ].join('\n'),
    );
  });

  it('the fake node models the step: the stale files and their mounts go, the kept one stays; a mount gone since fails as umount does', async () => {
    const { host } = dirtyFlannelNode({ pods: 3 });
    host.addNetns('cni-0000aaaa-0000-0000-0000-000000000000', { inUse: true });
    host.netnsDirMount = '/run';
    const plan = await netns.plan(await ctxFor(host));
    for (const s of plan.steps) await host.apply(s);
    const left = [...host.fs.keys()].filter((p) => p.startsWith('/run/netns/')).sort();
    expect(left).toEqual(['/run/netns/cni-0000aaaa-0000-0000-0000-000000000000']);
    expect([...host.mounts].filter((p) => p.startsWith('/run/netns/'))).toEqual(left);

    const again = dirtyFlannelNode({ pods: 1 }).host;
    again.netnsDirMount = '/run';
    const step = (await netns.plan(await ctxFor(again))).steps[0]!;
    again.netnsDirMount = null;
    await expect(again.apply(step)).rejects.toThrow(/exited 32: umount: \/run: not mounted\.$/);
    expect(again.mounts.size).toBe(1);
  });

  it('without sh, or without umount, are unmounted one by one as before', async () => {
    for (const missing of ['sh', 'umount']) {
      const { host } = dirtyFlannelNode({ pods: 2 });
      host.netnsDirMount = '/run';
      host.removeBinary(missing);
      const plan = await netns.plan(await ctxFor(host));
      expect(plan.steps.map((s) => s.argv[0])).toEqual(['umount', 'rm']);
    }
  });

  it('are among the removals the preflight checks (a directory they cannot leave refuses the run), as files unmounted first', async () => {
    const { host, pods } = dirtyFlannelNode({ pods: 2 });
    host.netnsDirMount = '/run';
    const plan = await netns.plan(await ctxFor(host));
    expect(removalTargets([{ plan }])).toEqual(
      pods.map((p) => ({ path: `/run/netns/${p.netns}`, tree: false, unmounted: true })).sort((a, b) => a.path.localeCompare(b.path)),
    );
  });
});

/** A line of /proc/self/mountinfo. */
const line = (id: number, parent: number, point: string, fs = 'tmpfs') => `${id} ${parent} 0:1 / ${point} rw - ${fs} ${fs} rw`;

describe('the mount holding the netns directory (detachableMount)', () => {
  const files = ['/run/netns/cni-1', '/run/netns/cni-2'];

  it('where /run is shared (systemd) and ip netns made /run/netns a bind mount: /run, which holds both copies of each file’s mount', () => {
    const info = [
      line(1, 0, '/', 'ext4'),
      line(20, 1, '/run'),
      line(30, 20, '/run/netns'),
      line(31, 30, '/run/netns/cni-1', 'nsfs'),
      line(32, 20, '/run/netns/cni-1', 'nsfs'),
      line(33, 30, '/run/netns/cni-2', 'nsfs'),
      line(34, 20, '/run/netns/cni-2', 'nsfs'),
      line(40, 20, '/run/user/0'),
    ].join('\n');
    expect(detachableMount(info, '/run/netns', files)).toBe('/run');
  });

  it('a self-bind mount on the root file system: the bind mount', () => {
    const info = [line(1, 0, '/', 'ext4'), line(30, 1, '/run/netns', 'ext4'), line(31, 30, '/run/netns/cni-1', 'nsfs')].join('\n');
    expect(detachableMount(info, '/run/netns', files)).toBe('/run/netns');
  });

  it('on the root mount, or with a file mounted from the root mount: none', () => {
    expect(detachableMount([line(1, 0, '/', 'ext4'), line(31, 1, '/run/netns/cni-1', 'nsfs')].join('\n'), '/run/netns', files)).toBeNull();
    const info = [line(1, 0, '/', 'ext4'), line(30, 1, '/run/netns', 'ext4'), line(31, 1, '/run/netns/cni-1', 'nsfs')].join('\n');
    expect(detachableMount(info, '/run/netns', files)).toBeNull();
  });

  it('mounts stacked on /run: the top one when it holds the files, none when they hang from the one below', () => {
    const top = [line(1, 0, '/', 'ext4'), line(20, 1, '/run'), line(21, 20, '/run'), line(31, 21, '/run/netns/cni-1', 'nsfs')];
    expect(detachableMount(top.join('\n'), '/run/netns', files)).toBe('/run');
    const below = [line(1, 0, '/', 'ext4'), line(20, 1, '/run'), line(21, 20, '/run'), line(31, 20, '/run/netns/cni-1', 'nsfs')];
    expect(detachableMount(below.join('\n'), '/run/netns', files)).toBeNull();
  });

  it('reads escaped mount points', () => {
    const info = [line(1, 0, '/', 'ext4'), line(20, 1, '/srv/my\\040node'), line(31, 20, '/srv/my\\040node/run/netns/cni-1', 'nsfs')].join(
      '\n',
    );
    expect(detachableMount(info, '/srv/my node/run/netns', ['/srv/my node/run/netns/cni-1'])).toBe('/srv/my node');
  });
});

describe('a run that failed after removing all that shows its CNI', () => {
  const NETNS = ['cni-1111aaaa-0000-0000-0000-000000000000', 'cni-2222bbbb-0000-0000-0000-000000000000'];
  /** A node where a run of Flannel removed the config, state, links and rules, then stopped at its namespaces. */
  async function leftBy(status: 'failed' | 'interrupted' | 'running' | 'finished', node = 'node-1', partial = false): Promise<FakeHost> {
    const host = foreignNode();
    for (const n of NETNS) host.addNetns(n);
    const facts = [
      { cni: 'flannel', networks: ['cbr0'], bridges: ['cni0'], podNetworks: ['10.244.0.0/16'], nodeSubnets: ['10.244.1.0/24'] },
    ];
    await host.writeState(
      JOURNAL,
      JSON.stringify({ status, started: '2026-11-30T10:00:00.000Z', pid: 4242, node, facts, ...(partial ? { partial } : {}) }),
    );
    return host;
  }
  const planned = (stdout: string) => NETNS.filter((n) => stdout.includes(n));

  it.each(['failed', 'interrupted', 'running'] as const)('its journal says %s: the next plan finishes it, naming why', async (status) => {
    const r = await runMain(['plan'], await leftBy(status));
    expect(r.code).toBe(0);
    // A journal left 'running' is a run that was killed or crashed: unfinished.
    expect(r.stderr).toContain(
      `found flannel: the ${status === 'running' ? 'unfinished' : status} run of 2026-11-30T10:00:00.000Z was removing it`,
    );
    expect(planned(r.stdout)).toEqual(NETNS);
  });

  it("another node's journal (a cloned disk) is not taken up: its pod network is not this node's", async () => {
    const r = await runMain(['plan'], await leftBy('failed', 'node-7'));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'not using /var/lib/cni-sweep/last-run.json: the run of 2026-11-30T10:00:00.000Z there was on node "node-7", and this is "node-1"',
    );
    expect(r.stderr).toContain('no CNI state found on this node');
    expect(planned(r.stdout)).toEqual([]);
  });

  it("the run that finishes it names the unfinished run's backup too: that one holds what it removed", async () => {
    const host = await leftBy('interrupted');
    const j = JSON.parse((await host.readFile(JOURNAL))!);
    j.report = { backup: '/var/backups/cni-sweep/20261130T100000Z-node-1' };
    await host.writeState(JOURNAL, JSON.stringify(j));
    const r = await runMain(['run', '--yes', '--json', '--kubeconfig', '/etc/kubernetes/admin.conf'], host);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).earlierBackups).toEqual(['/var/backups/cni-sweep/20261130T100000Z-node-1']);
    const text = await runMain(['run', '--yes', '--kubeconfig', '/etc/kubernetes/admin.conf'], await leftBy('interrupted'));
    expect(text.stdout).not.toContain('unfinished run this one took up'); // no backup recorded: none named
    const j2 = await leftBy('interrupted');
    await j2.writeState(JOURNAL, JSON.stringify(j));
    const said = await runMain(['run', '--yes', '--kubeconfig', '/etc/kubernetes/admin.conf'], j2);
    expect(said.stdout).toContain(
      'cni-sweep: and the backup of the unfinished run this one took up: /var/backups/cni-sweep/20261130T100000Z-node-1; what that run removed: cni-sweep restore /var/backups/cni-sweep/20261130T100000Z-node-1\n',
    );
  });

  it('a run limited with --only or --skip finished only part of the job: the next plan takes it up', async () => {
    const r = await runMain(['plan'], await leftBy('finished', 'node-1', true));
    expect(r.stderr).toContain('found flannel: the run of 2026-11-30T10:00:00.000Z, limited to some phases, was removing it');
    expect(planned(r.stdout)).toEqual(NETNS);
    // And such a run says so in its journal; a whole one does not.
    const host = await leftBy('failed');
    const run = (args: string[]) => runMain(['run', '--yes', ...args, '--kubeconfig', '/etc/kubernetes/admin.conf'], host);
    expect((await run(['--only', 'netns'])).code).toBe(0);
    expect(JSON.parse((await host.readFile(JOURNAL))!)).toMatchObject({ status: 'finished', partial: true });
    // The next whole run takes it up, finds nothing left, and closes the job: the one after finds no Flannel.
    const next = await run([]);
    expect(next.code).toBe(0);
    expect(next.stderr).toContain('limited to some phases, was removing it');
    expect(JSON.parse((await host.readFile(JOURNAL))!)).toMatchObject({ status: 'finished' });
    expect(JSON.parse((await host.readFile(JOURNAL))!).partial).toBeUndefined();
    expect((await run([])).stderr).toContain('no CNI state found on this node');
  });

  it('a finished run is not taken up again: its namespaces are no sign of Flannel', async () => {
    const r = await runMain(['plan'], await leftBy('finished'));
    expect(r.stderr).toContain('no CNI state found on this node');
    expect(planned(r.stdout)).toEqual([]);
  });

  it('the CNI running again since (flanneld up): kept, as a detected live CNI is', async () => {
    const host = await leftBy('failed');
    host.addProcess(['/opt/bin/flanneld', '--ip-masq', '--kube-subnet-mgr']);
    const r = await runMain(['plan'], host);
    expect(r.stderr).toMatch(/keeping flannel: /);
    expect(planned(r.stdout)).toEqual([]);
  });
});
