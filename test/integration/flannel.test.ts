// Flannel cleanup on real kernel state: a network namespace per test, real ip/iptables/nft, files in
// a temporary root, and recording shims for systemctl and kubectl.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inNs, ipv4Rules, shimDir, type Backend, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { cliEnv, nodeArgs, runCli, snapshot, TestNodes, type NodeState, OWN } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 3 });
afterEach(nodes.cleanUp);
const dirtyNode = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

const FLANNEL_RULE = /FLANNEL|flanneld|CNI-|cbr0/;

/** What must survive: the state before, minus everything that is Flannel's. */
function withoutFlannel(s: NodeState, node: FlannelNode): NodeState {
  const podVeths = new Set(node.pods.map((p) => p.veth));
  const keepIpt = (t: string) =>
    t
      .split('\n')
      .filter((l) => !FLANNEL_RULE.test(l))
      .join('\n');
  return {
    ...s,
    links: s.links.filter((l) => !/^(cni0|flannel\.1) /.test(l) && !podVeths.has(l.split(' ')[0]!)),
    addrs: s.addrs
      .split('\n')
      .filter((l) => !/^(cni0|flannel\.1|veth[0-9a-f]{8}) /.test(l))
      .join('\n'),
    routes4: s.routes4
      .split('\n')
      .filter((l) => !/10\.244\.|10\.0\.(4|8|12)\.|cni0|flannel/.test(l))
      .join('\n'),
    routes6: s.routes6
      .split('\n')
      .filter((l) => !/fd00:10:244|cni0|flannel/.test(l))
      .join('\n'),
    ipt4nft: keepIpt(s.ipt4nft),
    ipt4legacy: keepIpt(s.ipt4legacy),
    ipt6nft: keepIpt(s.ipt6nft),
    ipt6legacy: keepIpt(s.ipt6legacy),
    nft: s.nft
      .split(/\n(?=table )/)
      .filter((t) => !t.startsWith('table ip flannel-ipv4 '))
      .join('\n'),
    files: s.files.filter(
      (f) =>
        !/^(etc\/cni\/net\.d\/10-flannel\.conflist|run\/flannel|var\/lib\/cni\/flannel|var\/lib\/cni\/networks\/cbr0|var\/lib\/cni\/results\/cbr0-|run\/netns\/cni-)/.test(
          f,
        ),
    ),
  };
}

/** cni-sweep's own bookkeeping (backups, journal) is not node state. */
function nodeOnly(s: NodeState): NodeState {
  return { ...s, files: s.files.filter((f) => !OWN.test(f) && !/^var\/backups\/ /.test(f)) };
}

function expectNoFlannel(after: NodeState) {
  expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1|veth[0-9a-f]{8}) /m);
  for (const t of [after.ipt4nft, after.ipt4legacy, after.ipt6nft, after.ipt6legacy]) expect(t).not.toMatch(FLANNEL_RULE);
  expect(after.nft).not.toContain('flannel');
  expect(after.routes4).not.toMatch(/10\.244\./);
  expect(after.routes6).not.toMatch(/fd00:10:244/);
  expect(after.files.join('\n')).not.toMatch(/flannel|cbr0|run\/netns\/cni-/);
}

describe.each<Backend>(['nft', 'legacy'])('cni-sweep run on a dirty Flannel node (iptables-%s)', (backend) => {
  it('removes everything of Flannel, keeps everything else exactly, and stops/starts services in order', () => {
    const node = dirtyNode(`run-${backend}`, { backend });
    const before = snapshot(node);
    expect(before.links.join('\n')).toMatch(/^cni0 bridge/m);
    expect(backend === 'nft' ? before.ipt4nft : before.ipt4legacy).toContain('FLANNEL-POSTRTG');

    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.changed).toBe(true);
    expect(report.cni).toEqual(['flannel']);
    expect(report.phases.map((p: { name: string; status: string }) => `${p.name}:${p.status}`)).toEqual([
      'preflight:nothing-to-do',
      'backup:ok',
      'drain:ok',
      'stop-kubelet:ok',
      'remove-sandboxes:nothing-to-do',
      'stop-runtime:ok',
      'cni-config:ok',
      'cni-state:ok',
      'bpf:nothing-to-do',
      'interfaces:ok',
      'routes:ok',
      'firewall:ok',
      'netns:ok',
      'modules:skipped',
      'start-runtime:ok',
      'start-kubelet:ok',
      'uncordon:nothing-to-do',
    ]);

    const after = nodeOnly(snapshot(node));
    expectNoFlannel(after);
    expect(after).toEqual(withoutFlannel(before, node));
    expect(report.backup).toMatch(new RegExp(`^${node.root}/var/backups/cni-sweep/\\d{8}T\\d{6}Z-node-1$`));
    expect(fs.existsSync(path.join(report.backup, 'manifest.json'))).toBe(true);

    const changes = r.calls.filter((c) => !c.startsWith('systemctl is-active') && c !== 'crictl pods -o json');
    expect(changes).toEqual([
      `kubectl --kubeconfig ${shimDir(node.root)}/kubeconfig drain node-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s`,
      'systemctl stop kubelet.service',
      'systemctl stop containerd.service',
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
  });

  it('a second run on the clean node executes nothing and reports changed: false', () => {
    const node = dirtyNode(`idem-${backend}`, { backend });
    expect(runCli(node, ['run', '--yes', ...nodeArgs(node)]).code).toBe(0);
    const clean = snapshot(node);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.changed).toBe(false);
    expect(report.phases.flatMap((p: { steps: unknown[] }) => p.steps)).toEqual([]);
    expect(r.calls.filter((c) => !c.startsWith('systemctl is-active'))).toEqual([]);
    expect(snapshot(node)).toEqual(clean);
  });
});

describe('cni-sweep plan', () => {
  it('changes nothing, and the printed script run by bash on an identical node reaches the same end state as run', () => {
    const a = dirtyNode('plan-a');
    const b = dirtyNode('plan-b');
    const beforeA = snapshot(a);
    const plan = runCli(a, ['plan', ...nodeArgs(a)]);
    expect(plan.code).toBe(0);
    expect(snapshot(a)).toEqual(beforeA);
    // Only questions: the units' states and the runtime's pod sandboxes.
    expect(plan.calls.filter((c) => !c.startsWith('systemctl is-active') && c !== 'crictl pods -o json')).toEqual([]);
    expect(plan.stdout).toMatch(/^#!\/usr\/bin\/env bash\n/);
    expect(plan.stdout).toContain('# cni: flannel');
    expect(plan.stdout).toContain("ip -batch - <<'CNI_SWEEP_EOF'\n");
    expect(plan.stdout).toContain('link set dev cni0 group 4242424\n');
    expect(plan.stdout).toMatch(/link set dev flannel.1 group 4242424\n(.*\n)*link delete group 4242424\n/);
    expect(plan.stdout).toContain('iptables-nft-restore --noflush -w');

    // Node b's plan differs from a's only in its own paths and pods: make it there, run it with bash.
    const planB = runCli(b, ['plan', ...nodeArgs(b)]);
    const script = path.join(b.root, '..', 'plan.sh');
    fs.writeFileSync(script, planB.stdout);
    execFileSync('nsenter', [`--net=/run/netns/${b.ns}`, 'bash', script], {
      env: cliEnv(b),
      stdio: 'pipe',
    });
    expect(runCli(a, ['run', '--yes', ...nodeArgs(a)]).code).toBe(0);
    expect(nodeOnly(snapshot(b))).toEqual(nodeOnly(snapshot(a)));
  });

  it('plans only what exists: nothing for a clean node', () => {
    const node = dirtyNode('plan-clean', { pods: 0 });
    expect(runCli(node, ['run', '--yes', ...nodeArgs(node)]).code).toBe(0);
    const r = runCli(node, ['plan', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# nothing to do');
    expect(r.stdout).not.toMatch(/^(ip|rm|iptables|nft|systemctl|kubectl|umount) /m);
  });

  it('without root, still plans from what it can read, says on stderr what it could not, and exits 0', () => {
    const node = dirtyNode('plan-nonroot');
    fs.chmodSync(path.dirname(node.root), 0o755);
    const r = runCli(node, ['plan', ...nodeArgs(node)], { env: {} });
    // Same command, but as nobody: the shims and files stay readable, iptables and nft are not.
    const asNobody = execFileSync(
      'nsenter',
      [
        `--net=/run/netns/${node.ns}`,
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        path.resolve(__dirname, '../../dist/cni-sweep.cjs'),
        'plan',
        ...nodeArgs(node),
      ],
      {
        env: { ...cliEnv(node), SHIM_LOG: '/dev/null' },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    expect(r.code).toBe(0);
    expect(asNobody).toContain('link set dev cni0 group 4242424');
    expect(asNobody).toMatch(/# could not read: iptables-nft-save/);
  });
});

describe('Flannel firewall ownership on real iptables', () => {
  it('removes the untagged rules of old Flannel releases, and keeps a site rule that mentions the pod CIDR', () => {
    const node = dirtyNode('old-untagged', { oldUntagged: true });
    const before = snapshot(node);
    expect(before.ipt4nft).toContain('-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN');
    expect(runCli(node, ['run', '--yes', ...nodeArgs(node)]).code).toBe(0);
    const after = snapshot(node);
    for (const gone of [
      '-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN',
      '-A POSTROUTING -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully',
      '-A POSTROUTING ! -s 10.244.0.0/16 -d 10.244.1.0/24 -j RETURN',
      '-A POSTROUTING ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully',
      '-A FORWARD -s 10.244.0.0/16 -j ACCEPT',
      '-A FORWARD -d 10.244.0.0/16 -j ACCEPT',
    ])
      expect(after.ipt4nft).not.toContain(gone);
    expect(after.ipt4nft).toContain('-A POSTROUTING -s 10.244.0.0/16 -d 192.168.50.0/24 -j ACCEPT');
    expect(after.ipt4nft).toContain('-A SITE-FW -s 10.244.0.0/16 -d 192.168.50.0/24 -j DROP');
  });

  it("keeps the shared portmap chains and podman's entries when podman's config still uses portmap", () => {
    const node = dirtyNode('podman', { podmanConfig: true });
    expect(runCli(node, ['run', '--yes', ...nodeArgs(node)]).code).toBe(0);
    const after = snapshot(node);
    expect(after.ipt4nft).toContain(':CNI-HOSTPORT-DNAT -');
    expect(after.ipt4nft).toContain('-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT');
    expect(after.ipt4nft).toContain('-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE');
    expect(after.ipt4nft).toMatch(/dnat name: \\"podman\\"/);
    expect(after.ipt4nft).not.toMatch(/cbr0|FLANNEL/);
    expect(after.files).toContain(
      `etc/cni/net.d/87-podman-bridge.conflist 644 ${JSON.stringify(fs.readFileSync(path.join(node.root, 'etc/cni/net.d/87-podman-bridge.conflist'), 'utf8'))}`,
    );
  });

  it('cleans both backends when Flannel rules sit in iptables-nft and iptables-legacy at once', () => {
    const node = dirtyNode('both-backends', { backend: 'nft' });
    inNs(
      node.ns,
      'iptables-legacy-restore',
      ['--noflush'],
      ipv4Rules({ pods: node.pods, network: node.network, subnet: node.subnet, oldUntagged: false, podman: false, foreignRules: 2 }),
    );
    const before = snapshot(node);
    expect(before.ipt4legacy).toContain('FLANNEL-POSTRTG');
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    const fw = JSON.parse(r.stdout).phases.find((p: { name: string }) => p.name === 'firewall');
    expect(fw.steps.map((s: { argv: string[] }) => s.argv.join(' '))).toEqual([
      'iptables-nft-restore --noflush -w',
      'iptables-legacy-restore --noflush -w',
      'ip6tables-nft-restore --noflush -w',
      'nft -f -',
    ]);
    const after = nodeOnly(snapshot(node));
    expectNoFlannel(after);
    expect(after).toEqual(withoutFlannel(before, node));
    expect(after.ipt4legacy).toContain('-A SITE-FW -s 172.16.0.1/32 -p tcp -m tcp --dport 1025 -j ACCEPT');
  });
});

describe('refusals', () => {
  it('run without --yes and without a terminal refuses with exit 3 and changes nothing', () => {
    const node = dirtyNode('noyes', { pods: 1 });
    const before = snapshot(node);
    const r = runCli(node, ['run', ...nodeArgs(node)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--yes/);
    expect(r.stdout).toBe('');
    expect(snapshot(node)).toEqual(before);
  });
});
