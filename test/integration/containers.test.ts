// Docker's and podman's containers beside Flannel's pods, on real kernel state: their host veths
// have peers in other network namespaces (docker's under <root>/var/run/docker/netns, podman's
// netns-<uuid> and another runtime's cni-<uuid> under <root>/run/netns). A run removes exactly
// Flannel's pod namespaces, keeps every container's namespace, link, address and rule, and learns
// which namespace is whose without entering each one.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addContainers, removeContainers, type Containers } from '../helpers/containers-node.js';
import { wrapper } from '../helpers/faults.js';
import { inNs, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, OWN, runCli, snapshot, TestNodes, type NodeState } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 4, podmanConfig: true });
afterEach(nodes.cleanUp);

function crowded(tag: string): { n: FlannelNode; c: Containers } {
  const n = nodes.make(tag);
  nodes.onCleanup(() => {
    removeContainers(n);
  });
  const c = addContainers(n, { docker: 3, podman: 2, otherCni: 1 });
  return { n, c };
}

/** Everything of docker's and podman's in a state: links, addresses, routes, rules, files. */
function theirs(s: NodeState, c: Containers) {
  const veths = new Set([...c.dockerVeths, ...c.podmanVeths, ...c.otherVeths, 'docker0', 'cni-podman0']);
  return {
    links: s.links.filter((l) => veths.has(l.split(' ')[0]!)),
    addrs: s.addrs.split('\n').filter((l) => veths.has(l.split(' ')[0]!)),
    routes: s.routes4.split('\n').filter((l) => /docker0|cni-podman0/.test(l)),
    rules: s.ipt4nft.split('\n').filter((l) => /DOCKER|docker0|podman/.test(l)),
    files: s.files.filter((f) => !OWN.test(f) && /docker|run\/netns\/netns-|podman/.test(f.split(' ')[0]!)),
  };
}

/** What a container sees inside its namespace: its eth0, up, with its address. */
function inside(file: string): string {
  const out = JSON.parse(
    execFileSync('nsenter', [`--net=${file}`, 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }),
  ) as Array<{
    operstate: string;
    addr_info: Array<{ local: string; prefixlen: number }>;
  }>;
  return `${out[0]!.operstate} ${out[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(' ')}`;
}

const netnsNotes = (stdout: string): string[] =>
  (JSON.parse(stdout) as { phases: Array<{ name: string; notes: string[] }> }).phases.find((p) => p.name === 'netns')?.notes ?? [];

describe('docker and podman containers beside Flannel pods', () => {
  it('a run keeps every container, removes exactly the Flannel pod namespaces, and enters none of them', async () => {
    const { n, c } = crowded('containers');
    // One Flannel pod's namespace is still used by a process: it stays, with its note.
    const held = path.join(n.root, 'run/netns', n.pods[0]!.netns);
    const sleeper = spawn('nsenter', [`--net=${held}`, 'sleep', '600'], { stdio: 'ignore', detached: true });
    nodes.onCleanup(() => process.kill(-sleeper.pid!, 'SIGKILL'));
    for (let i = 0; i < 250 && fs.readlinkSync(`/proc/${sleeper.pid}/ns/net`) === fs.readlinkSync('/proc/self/ns/net'); i++)
      await new Promise((r) => setTimeout(r, 20));
    const before = snapshot(n);
    const seen = c.podmanNetns.concat(c.otherNetns, c.dockerNetns).map(inside);
    const log = path.join(path.dirname(n.root), 'nsenter.log');
    const spy = wrapper(path.join(path.dirname(n.root), 'spy'), 'nsenter', `echo "$*" >> ${log}`);

    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)], { pathBefore: [spy] });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(netnsNotes(r.stdout)).toEqual([
      `kept ${held}: a running process still uses it`,
      `kept ${c.otherNetns[0]}: its pod interface pairs with ${c.otherVeths[0]}, which is not flannel's`,
    ]);
    const left = fs.readdirSync(path.join(n.root, 'run/netns')).sort();
    expect(left).toEqual([n.pods[0]!.netns, ...[...c.podmanNetns, ...c.otherNetns].map((f) => path.basename(f))].sort());
    const after = snapshot(n);
    expect(theirs(after, c)).toEqual(theirs(before, c));
    expect(c.podmanNetns.concat(c.otherNetns, c.dockerNetns).map(inside)).toEqual(seen);
    // Flannel's links are gone; no namespace under the root was entered to tell whose it is.
    expect(after.links.join('\n')).not.toMatch(new RegExp(`^(cni0|flannel\\.1|${n.pods.map((p) => p.veth).join('|')}) `, 'm'));
    const entered = (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').split('\n').filter((l) => l.includes(n.root));
    expect(entered).toEqual([]);
  });

  it('the namespace ids read while planning serve the netns phase: deleting links and files does not change them', () => {
    const { n, c } = crowded('containers-ids');
    const trace = path.join(path.dirname(n.root), 'trace');
    const phases = 'cni-config,cni-state,interfaces,routes,firewall,netns';
    const r = runCli(n, ['run', '--yes', '--json', '--only', phases, ...nodeArgs(n)], { env: { CNI_SWEEP_TRACE: trace } });
    expect(r.code).toBe(0);
    expect(netnsNotes(r.stdout)).toEqual([
      `kept ${c.otherNetns[0]}: its pod interface pairs with ${c.otherVeths[0]}, which is not flannel's`,
    ]);
    const left = fs.readdirSync(path.join(n.root, 'run/netns')).sort();
    expect(left).toEqual([...c.podmanNetns, ...c.otherNetns].map((f) => path.basename(f)).sort());
    const idReads = fs
      .readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => /\$ unshare .* ip -j netns list /.test(l));
    expect(idReads).toHaveLength(1);
  });

  it('where the ids cannot be read in one go (no unshare), it enters each namespace and decides the same', () => {
    const { n, c } = crowded('containers-nounshare');
    const before = snapshot(n);
    const broken = wrapper(
      path.join(path.dirname(n.root), 'broken'),
      'unshare',
      'echo "unshare: unshare failed: Operation not permitted" >&2; exit 1',
    );
    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)], { pathBefore: [broken] });
    expect(r.code).toBe(0);
    expect(netnsNotes(r.stdout)).toEqual([
      `kept ${c.otherNetns[0]}: its pod interface pairs with ${c.otherVeths[0]}, which is not flannel's`,
    ]);
    const left = fs.readdirSync(path.join(n.root, 'run/netns')).sort();
    expect(left).toEqual([...c.podmanNetns, ...c.otherNetns].map((f) => path.basename(f)).sort());
    expect(theirs(snapshot(n), c)).toEqual(theirs(before, c));
    expect(inNs(n.ns, 'ip', ['-j', 'link', 'show', 'dev', c.dockerVeths[0]!])).toContain(c.dockerVeths[0]);
  });
});
