// The netns phase on a node where docker's and podman's containers sit beside the CNI's pods: their
// host veths have peers in other namespaces, so the phase must tell the CNI's namespaces from
// theirs. It learns every namespace file's id in one read, instead of entering each namespace.
import { describe, expect, it } from 'vitest';
import type { FakeHost } from '../../src/host/fake.js';
import { netns } from '../../src/phases/netns.js';
import type { PlannedStep } from '../../src/phases/types.js';
import { dirtyFlannelNode } from './fake-node.js';
import { ctxFor } from './helpers.js';

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

  it('a namespace a process uses stays, and is not looked into', async () => {
    const { host, pods } = crowdedNode(3);
    host.netnsUsed.add(host.realPath(`/run/netns/${pods[1]!.netns}`));
    const plan = await netns.plan(await ctxFor(host));
    expect(plan.notes[0]).toBe(`kept /run/netns/${pods[1]!.netns}: a running process still uses it`);
    expect(plan.steps.at(-1)!.argv).not.toContain(`/run/netns/${pods[1]!.netns}`);
    expect(plan.steps.at(-1)!.argv.slice(3)).toHaveLength(2);
  });
});
