// Never harm a live node, on real kernel state: a CNI whose agent runs in the node's network
// namespace is kept without --cni and refused with it; a run never leaves pods undrained without
// saying so; uncordon only onto a pod network. The agents are real processes named like the CNI's
// (`exec -a calico-node sleep`), started in the test's namespace and killed at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addCalico } from '../helpers/calico-node.js';
import { makeK3s } from '../helpers/distro-node.js';
import { inNs, sh, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, snapshot, TestNodes, type NodeState, OWN } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 1 });
afterEach(nodes.cleanUp);

function stopAgent(pid: number) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
}

const node = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

/**
 * A process calling itself `name` in the network namespace `ns`, as a node agent in the host network
 * would, with `args` on its command line (a bash that waits; its sleep is killed with it, as a
 * process group); resolves to its pid.
 */
async function startAgent(ns: string, name: string, args: string[] = []): Promise<number> {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, 'bash', '-c', `exec -a ${name} bash -c 'sleep 600; :' "$@"`, '-', ...args], {
    stdio: 'ignore',
    detached: true,
  });
  const pid = child.pid!;
  nodes.onCleanup(() => {
    stopAgent(pid);
  });
  for (let i = 0; i < 250; i++) {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    if (argv0 === name) return pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`agent ${name} did not start`);
}

const ipsets = (n: FlannelNode) => inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean).sort();
const state = (n: FlannelNode) => {
  const s = snapshot(n);
  return { ...s, files: s.files.filter((f) => !OWN.test(f)), ipsets: ipsets(n) };
};
/** Everything of Calico's in a state: its links, routes, rules, table, files and ipsets. */
const calicoOnly = (s: NodeState & { ipsets: string[] }) => ({
  links: s.links.filter((l) => /^(cali|vxlan\.calico)/.test(l)),
  addrs: s.addrs.split('\n').filter((l) => /^(cali|vxlan\.calico)/.test(l)),
  routes: s.routes4.split('\n').filter((l) => /cali|172\.20\./.test(l)),
  rules: [s.ipt4nft, s.ipt4legacy].map((t) => t.split('\n').filter((l) => /cali/.test(l))),
  nft: s.nft.split(/\n(?=table )/).filter((t) => t.startsWith('table ip calico ')),
  files: s.files.filter((f) => /calico|k8s-pod-network/.test(f)),
  ipsets: s.ipsets,
});

describe('a running Calico beside Flannel leftovers', () => {
  it('without --cni: plan and run keep Calico byte for byte, say why, and remove the Flannel leftovers', async () => {
    const n = node('live-calico');
    const calico = addCalico(n, { pods: 2 });
    const pid = await startAgent(n.ns, 'calico-node', ['-felix']);
    const before = state(n);

    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('# cni: flannel (detected)\n');
    expect(plan.stdout).toContain(`#   keep calico: live: its agent runs: calico-node (pid ${pid})\n`);
    expect(plan.stdout).toContain('#   remove flannel: leftovers: no agent of it runs and the runtime does not use its config\n');
    expect(plan.stdout).not.toMatch(/^[^#].*(10-calico|vxlan\.calico|cali-|cali40)/m);
    expect(plan.stderr).toContain(`keeping calico: live: its agent runs: calico-node (pid ${pid})`);

    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.cni).toEqual(['flannel']);
    expect(report.targets).toEqual([
      { cni: 'flannel', action: 'remove', why: 'leftovers: no agent of it runs and the runtime does not use its config' },
      { cni: 'calico', action: 'keep', why: `live: its agent runs: calico-node (pid ${pid})` },
    ]);
    const after = state(n);
    expect(calicoOnly(after)).toEqual(calicoOnly(before));
    for (const p of calico.pods) expect(fs.existsSync(path.join(n.root, 'run/netns', p.netns))).toBe(true);
    // Flannel's leftovers are gone.
    expect(after.ipt4nft).not.toMatch(/FLANNEL|flanneld/);
    expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1) /m);
    expect(after.nft).not.toContain('flannel-ipv4');
    expect(fs.existsSync(path.join(n.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);
    expect(fs.existsSync(path.join(n.root, 'run/flannel'))).toBe(false);
  });

  it('--cni calico refuses with exit 3, naming the agent and its pid and how to stop it; nothing changes', async () => {
    const n = node('live-refuse');
    addCalico(n, { pods: 1 });
    const pid = await startAgent(n.ns, 'bird', ['-R', '-s', '/var/run/calico/bird.ctl', '-d', '-c', '/etc/calico/confd/config/bird.cfg']);
    const before = state(n);
    for (const cmd of ['plan', 'run']) {
      const r = runCli(n, [cmd, ...(cmd === 'run' ? ['--yes'] : []), '--cni', 'calico', ...nodeArgs(n)]);
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `cni-sweep: error: --cni calico: calico is live on this node: its agent runs: bird (pid ${pid}); cni-sweep never removes a live CNI\n` +
          '  hint: stop it for good first, by deleting its DaemonSet (manifest install: kubectl -n kube-system delete daemonset calico-node; operator install: kubectl delete installation default (the operator recreates the DaemonSet otherwise)), wait for its pods to go, then run again\n',
      );
    }
    expect(state(n)).toEqual(before);
  });

  it("a site's own BIRD, or a calico-node in another network namespace, does not make Calico live", async () => {
    const n = node('live-not');
    addCalico(n, { pods: 1 });
    await startAgent(n.ns, 'bird', ['-c', '/etc/bird/bird.conf']);
    const other = `${n.ns.slice(0, 34)}-other`;
    sh('ip', ['netns', 'add', other]);
    nodes.onCleanup(() => sh('ip', ['netns', 'delete', other]));
    await startAgent(other, 'calico-node', ['-felix']);
    const r = runCli(n, ['plan', '--json', '--cni', 'calico', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).targets).toEqual([
      {
        cni: 'calico',
        action: 'remove',
        why: "named with --cni; pods use it now: /etc/cni/net.d/10-calico.conflist is the runtime's config, so new pods get no network until another CNI is installed",
      },
    ]);
  });
});

describe('a single live Flannel', () => {
  it('without --cni is kept, with the reason; nothing changes', async () => {
    const n = node('live-flannel');
    const pid = await startAgent(n.ns, 'flanneld', ['--ip-masq', '--kube-subnet-mgr']);
    const before = state(n);
    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(`# cni: none to remove (detected)\n`);
    expect(plan.stdout).toContain(`#   keep flannel: live: its agent runs: flanneld (pid ${pid})\n`);
    expect(plan.stdout).toContain('# nothing to do');
    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).changed).toBe(false);
    expect(r.calls.filter((c) => !/ is-active /.test(c))).toEqual([]);
    expect(state(n)).toEqual(before);
    // Once its agent is gone, it is leftovers and goes.
    stopAgent(pid);
    await new Promise((r) => setTimeout(r, 100));
    const gone = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]);
    expect(gone.code).toBe(0);
    expect(JSON.parse(gone.stdout).cni).toEqual(['flannel']);
    expect(state(n).links.join('\n')).not.toMatch(/^cni0 /m);
  });
});

describe('a stale Canal beside a live Flannel', () => {
  // Canal's state is Flannel's plus Calico's: flannel.1, /run/flannel, FLANNEL-*, flannel-ipv4 are
  // both CNIs' names. On k3s its Flannel runs inside k3s (no flanneld): a Canal left from an rke2
  // install must not take that Flannel's state with it.
  it('on k3s, with its embedded Flannel running: Canal is kept, with the reason; --cni canal is refused; nothing changes', async () => {
    const n = node('canal-k3s');
    makeK3s(n, { role: 'server' });
    addCalico(n, { pods: 1, canal: true });
    const pid = await startAgent(n.ns, 'k3s-server');
    const before = state(n);
    const live = `live: k3s server runs with its embedded Flannel (backend vxlan), and canal's state is flannel's too: removing canal would remove the live flannel's`;
    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(`#   keep canal: ${live}; `);
    expect(plan.stdout).toContain('# nothing to do');
    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).changed).toBe(false);
    const named = runCli(n, ['run', '--yes', '--cni', 'canal', ...nodeArgs(n)]);
    expect(named.code).toBe(3);
    expect(named.stderr).toContain(
      `cni-sweep: error: --cni canal: canal is ${live.replace('live: ', 'live on this node: ')}; cni-sweep never removes a live CNI\n`,
    );
    expect(named.stderr).toContain('  hint: stop k3s (systemctl stop k3s, or k3s-agent) and run again');
    expect(state(n)).toEqual(before);
    stopAgent(pid);
  });
});

describe('drain is never skipped silently', () => {
  it('without a kubeconfig, run --yes refuses (exit 3) and changes nothing; plan warns; --skip drain runs', () => {
    const n = node('nodrain');
    const args = ['--root', n.root, '--node', 'node-1'];
    const before = state(n);
    const plan = runCli(n, ['plan', ...args]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^# WARNING: the node will not be drained: its pods lose networking \(no kubeconfig found/m);
    const refused = runCli(n, ['run', '--yes', ...args]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(
      /\ncni-sweep: error: the node will not be drained: its pods lose networking \([^\n]*\); nothing was changed\n {2}hint: pass --kubeconfig <file> to drain it first, or --skip drain [^\n]*\n$/,
    );
    // Only the distribution's detection asks which units run: nothing that changes the node, and no
    // read for the phases after drain (their units, the runtime's pods).
    expect(refused.calls.filter((c) => !/^systemctl is-active kubelet\.service cri-docker\.service /.test(c))).toEqual([]);
    expect(state(n)).toEqual(before);
    const ok = runCli(n, ['run', '--yes', '--skip', 'drain', ...args]);
    expect(ok.code).toBe(0);
    expect(ok.calls.some((c) => c.startsWith('kubectl'))).toBe(false);
    expect(state(n).links.join('\n')).not.toMatch(/^cni0 /m);
  });
});

describe('uncordon only onto a pod network', () => {
  it("refuses --uncordon when podman's bridge is the only config left, before changing anything; the plan warns", () => {
    const n = node('uncordon-podman', { podmanConfig: true });
    const before = state(n);
    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.stdout).toMatch(
      /^# WARNING: after the removal the runtime's first CNI config is \/etc\/cni\/net\.d\/87-podman-bridge\.conflist \(network podman, plugins bridge, portmap, firewall, tuning\), which is no pod network: /m,
    );
    const r = runCli(n, ['run', '--yes', '--uncordon', ...nodeArgs(n)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'refusing to uncordon: no CNI config of a pod network left in /etc/cni/net.d (only /etc/cni/net.d/87-podman-bridge.conflist, which no pod network cni-sweep knows owns); install the new CNI first',
    );
    expect(r.calls.some((c) => / (uncordon|drain|stop) /.test(c))).toBe(false);
    expect(state(n)).toEqual(before);
  });
});
