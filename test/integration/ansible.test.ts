// The Ansible role and playbook (deploy/ansible) for real: Debian's ansible-playbook against
// localhost (ansible_connection=local), where every inventory host is a dirty Flannel node in its
// own network namespace and temporary root. kubectl (drain/uncordon on the "control host") and
// systemctl are the recording shims. ansible-playbook starts slowly: a few plays only.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { wrapper } from '../helpers/faults.js';
import { inNs, shimDir, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { bundleDest, findAnsiblePlaybook, hostVars, runPlaybook, writeInventory, type PlaybookResult } from '../helpers/ansible.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { BUNDLE, readCalls, resetCalls, snapshot, TestNodes } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 2 });
afterEach(nodes.cleanUp);
const dirtyNode = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);
function workDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-ansible-'));
  nodes.onCleanup(() => {
    fs.rmSync(d, { recursive: true, force: true });
  });
  return d;
}

beforeAll(() => {
  if (!findAnsiblePlaybook()) throw new Error('ansible-playbook is not installed: apt-get install -y ansible-core (.ci/run does)');
  if (!fs.existsSync(BUNDLE)) throw new Error('dist/cni-sweep.bundle.cjs is missing: npm run build');
});

const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
/** What the shims recorded that changes something (is-active is a read). */
// What the shims did that changes something: no reads (is-active, crictl's listings).
const changes = (node: FlannelNode) =>
  readCalls(node).filter((c) => !c.startsWith('systemctl is-active') && !/^crictl (?:.* )?(?:pods|inspectp)\b/.test(c));
const drain = (node: FlannelNode, name: string) =>
  `kubectl --kubeconfig ${shimDir(node.root)}/kubeconfig drain ${name} --ignore-daemonsets --delete-emptydir-data --timeout=300s`;
const uncordon = (node: FlannelNode, name: string) => `kubectl --kubeconfig ${shimDir(node.root)}/kubeconfig uncordon ${name}`;

function expectOk(r: PlaybookResult) {
  if (r.code !== 0) throw new Error(`ansible-playbook exited ${r.code}\n${r.stdout}\n${r.stderr}`);
}

function expectClean(node: FlannelNode) {
  const links = inNs(node.ns, 'ip', ['-o', 'link', 'show']);
  expect(links).not.toMatch(/\d+: (cni0|flannel\.1)[:@]/);
  for (const p of node.pods) expect(links).not.toContain(p.veth);
  expect(inNs(node.ns, 'iptables-nft-save', [])).not.toMatch(/FLANNEL|flanneld/);
  expect(inNs(node.ns, 'ip6tables-nft-save', [])).not.toMatch(/FLANNEL|flanneld/);
  expect(inNs(node.ns, 'nft', ['list', 'tables'])).not.toContain('flannel');
  expect(fs.existsSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);
  expect(fs.existsSync(path.join(node.root, 'run/flannel'))).toBe(false);
}

describe('deploy/ansible: site.yml with the cni_sweep role', () => {
  it('--check shows the plans and changes nothing; the play cleans node after node (drain, run, uncordon); a second play changes nothing', async () => {
    // node-a has the new pod network's config (Calico's) after the cleanup, so it is uncordoned;
    // node-b has only podman's, which is no pod network: it stays cordoned.
    const a = dirtyNode('ans-a');
    fs.writeFileSync(path.join(a.root, 'etc/cni/net.d/10-calico.conflist'), CALICO_CONFLIST);
    const b = dirtyNode('ans-b', { podmanConfig: true });
    const dir = workDir();
    const controlLog = path.join(dir, 'control-calls.log');
    // A copy of the bundle taken now: a rebuild of dist/ during the test must not make the second
    // play copy a new one. (The other test uses the role's default, the repository's dist/.)
    const bundle = path.join(dir, 'cni-sweep.cjs');
    fs.copyFileSync(BUNDLE, bundle);
    const vars = { cni_sweep_bundle_src: bundle };
    const inventory = writeInventory(dir, { 'node-a': hostVars(a, { controlLog, vars }), 'node-b': hostVars(b, { controlLog, vars }) });

    // 1. check mode: cni-sweep plan on each node, shown; nothing drained, copied, run or uncordoned.
    const before = { a: snapshot(a), b: snapshot(b) };
    resetCalls(a);
    resetCalls(b);
    const check = await runPlaybook(dir, inventory, ['--check']);
    expectOk(check);
    expect(check.recap['node-a']!.failed).toBe(0);
    expect(snapshot(a)).toEqual(before.a);
    expect(snapshot(b)).toEqual(before.b);
    expect(changes(a)).toEqual([]);
    expect(changes(b)).toEqual([]);
    expect(lines(controlLog)).toEqual([]);
    expect(fs.existsSync(path.dirname(bundleDest(a)))).toBe(false);
    // the bundle staged for the dry run is gone again
    expect(fs.readdirSync(path.join(dir, 'tmp')).filter((f) => f.endsWith('.cni-sweep.cjs'))).toEqual([]);
    for (const n of [a, b]) expect(check.stdout).toContain(`"# root: ${n.root}"`);
    expect(check.stdout).toContain('"# the role drains node-a from the control host first (cni_sweep_drain)"');
    expect(check.stdout).toContain('"# cni: flannel (--cni)"');
    expect(check.stdout).toContain('"link set dev cni0 group 4242424"');
    expect(check.stdout).toMatch(/"iptables-nft-restore --noflush -w <<'CNI_SWEEP_EOF'"/);

    // 2. the play: node-a drained, cleaned and uncordoned before node-b is touched (serial: 1).
    resetCalls(a);
    resetCalls(b);
    const play = await runPlaybook(dir, inventory);
    expectOk(play);
    expect(play.recap['node-a']).toMatchObject({ failed: 0, unreachable: 0 });
    expect(play.recap['node-a']!.changed).toBeGreaterThan(0);
    expect(play.recap['node-b']!.changed).toBeGreaterThan(0);
    expect(play.stdout).toMatch(/TASK \[cni_sweep : Run cni-sweep\] \**\nchanged: \[node-a\]/);
    expect(play.stdout).toContain(
      "node-b stays cordoned: no pod network's CNI config on it yet (a podman or plain bridge config does not count)",
    );
    expectClean(a);
    expectClean(b);
    expect(fs.existsSync(path.join(a.root, 'etc/cni/net.d/10-calico.conflist'))).toBe(true);
    expect(fs.existsSync(path.join(b.root, 'etc/cni/net.d/87-podman-bridge.conflist'))).toBe(true);
    expect(lines(controlLog)).toEqual([drain(a, 'node-a'), uncordon(a, 'node-a'), drain(b, 'node-b')]);
    // cni-sweep itself was told --skip drain and no --uncordon: kubectl ran only on the control host.
    for (const n of [a, b]) {
      expect(changes(n)).toEqual([
        'systemctl stop kubelet.service',
        'systemctl stop containerd.service',
        'systemctl start containerd.service',
        'systemctl start kubelet.service',
      ]);
      expect(fs.readFileSync(bundleDest(n))).toEqual(fs.readFileSync(bundle));
    }

    // 3. again: nothing to do, nothing reported changed, nobody drained.
    const clean = { a: snapshot(a), b: snapshot(b) };
    resetCalls(a);
    resetCalls(b);
    fs.writeFileSync(controlLog, '');
    const again = await runPlaybook(dir, inventory);
    expectOk(again);
    expect(again.recap['node-a']).toMatchObject({ changed: 0, failed: 0 });
    expect(again.recap['node-b']).toMatchObject({ changed: 0, failed: 0 });
    expect(lines(controlLog)).toEqual([]);
    expect(changes(a)).toEqual([]);
    expect(changes(b)).toEqual([]);
    expect(snapshot(a)).toEqual(clean.a);
    expect(snapshot(b)).toEqual(clean.b);
    console.log(`ansible plays: check ${check.ms} ms, run ${play.ms} ms, again ${again.ms} ms (2 nodes each)`);
  }, 180_000);

  it('a node whose cleanup fails fails the play with the failed step, stays cordoned, and stops the rollout', async () => {
    const f = dirtyNode('ans-fail');
    const g = dirtyNode('ans-next');
    const dir = workDir();
    const controlLog = path.join(dir, 'control-calls.log');
    const faults = wrapper(
      path.join(dir, 'faults'),
      'iptables-nft-restore',
      'echo "injected: iptables-nft-restore refused the batch" >&2; exit 4',
    );
    const inventory = writeInventory(dir, {
      'node-f': hostVars(f, { controlLog, cli: { pathBefore: [faults] } }),
      'node-g': hostVars(g, { controlLog }),
    });
    const gBefore = snapshot(g);
    resetCalls(f);
    resetCalls(g);

    const r = await runPlaybook(dir, inventory);
    expect(r.code).toBe(2);
    expect(r.recap['node-f']).toMatchObject({ failed: 1 });
    expect(r.stdout).toContain(
      'cni-sweep run failed on node-f (exit 1) in phase firewall; step: iptables-nft-restore --noflush -w; exit code: 4; stderr: injected: iptables-nft-restore refused the batch;',
    );
    expect(r.stdout).toMatch(/; backup: \S+\/var\/backups\/cni-sweep\/\d{8}T\d{6}Z-node-f; the node stays cordoned"/);
    expect(fs.existsSync(bundleDest(f))).toBe(true);
    // drained, not uncordoned; cni-sweep started the services it stopped again
    expect(lines(controlLog)).toEqual([drain(f, 'node-f')]);
    expect(changes(f).slice(-2)).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
    // the next node was never touched
    expect(r.recap['node-g']?.changed ?? 0).toBe(0);
    expect(changes(g)).toEqual([]);
    expect(snapshot(g)).toEqual(gBefore);
  }, 120_000);
});
