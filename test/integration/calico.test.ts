// Calico cleanup and CNI migration in both directions, on real kernel state: Calico alone, Calico
// beside a working Flannel (remove one, the other stays byte for byte), and Canal.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addCalico, type CalicoInstall } from '../helpers/calico-node.js';
import { addSandbox } from '../helpers/cri.js';
import { inNs, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, snapshot, TestNodes, type NodeState, OWN } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 2 });
afterEach(nodes.cleanUp);
const node = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

const ipsets = (n: FlannelNode) => inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean).sort();

interface State extends NodeState {
  ipsets: string[];
}
const state = (n: FlannelNode): State => {
  const s = snapshot(n);
  return { ...s, files: s.files.filter((f) => !OWN.test(f)), ipsets: ipsets(n) };
};

const CALICO_LINE = /cali|172\.20\./;
/** The state before, minus everything that is Calico's. */
function withoutCalico(s: State, calico: CalicoInstall): State {
  const netns = new Set(calico.pods.map((p) => p.netns));
  const dropLines = (t: string) =>
    t
      .split('\n')
      .filter((l) => !CALICO_LINE.test(l))
      .join('\n');
  return {
    ...s,
    links: s.links.filter((l) => !/^(cali[0-9a-f]{11}|vxlan\.calico) /.test(l)),
    addrs: s.addrs
      .split('\n')
      .filter((l) => !/^(cali[0-9a-f]{11}|vxlan\.calico) /.test(l))
      .join('\n'),
    routes4: dropLines(s.routes4),
    routes6: s.routes6
      .split('\n')
      .filter((l) => !/dev (cali[0-9a-f]{11}|vxlan\.calico) /.test(l))
      .join('\n'),
    ipt4nft: dropLines(s.ipt4nft),
    ipt4legacy: dropLines(s.ipt4legacy),
    nft: s.nft
      .split(/\n(?=table )/)
      .filter((t) => !t.startsWith('table ip calico '))
      .join('\n'),
    files: s.files.filter(
      (f) =>
        !/^(etc\/cni\/net\.d\/(10-calico\.conflist|10-canal\.conflist|calico-kubeconfig)|var\/lib\/calico|var\/run\/calico|var\/log\/calico|var\/lib\/cni\/results\/k8s-pod-network-)/.test(
          f,
        ) && !netns.has(f.split(' ')[0]!.replace(/^run\/netns\//, '')),
    ),
    ipsets: s.ipsets.filter((x) => !x.startsWith('cali40')),
  };
}

function expectNoCalico(s: State) {
  expect(s.links.join('\n')).not.toMatch(/^(cali[0-9a-f]{11}|vxlan\.calico) /m);
  expect(s.routes4).not.toMatch(/proto (bird|80)|172\.20\./);
  for (const t of [s.ipt4nft, s.ipt4legacy]) expect(t).not.toMatch(/cali/);
  expect(s.nft).not.toContain('table ip calico');
  expect(s.ipsets.filter((x) => x.startsWith('cali'))).toEqual([]);
  expect(s.files.join('\n')).not.toMatch(/calico|k8s-pod-network/);
}

describe('Calico', () => {
  it('detects Calico by content and removes all of it (cali-* chains in raw, mangle, nat and filter, ipsets, bird/80 routes, blackholes, files)', () => {
    const n = node('calico', { flannel: false });
    const calico = addCalico(n, { pods: 2 });
    const before = state(n);
    expect(before.ipt4nft).toMatch(/^\*raw$/m);
    expect(before.routes4).toContain('blackhole 172.20.5.0/26 proto bird');

    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('# cni: calico');
    expect(plan.stderr).toMatch(/found calico: config \/etc\/cni\/net\.d\/10-calico\.conflist/);
    expect(plan.stdout).toContain("ipset restore <<'CNI_SWEEP_EOF'\ndestroy cali40masq-ipam-pools\n");
    expect(plan.stdout).toContain('route delete blackhole 172.20.5.0/26\n');
    expect(plan.stdout).toContain('route delete 172.20.6.0/26 via 192.168.1.12 dev eth0\n');
    expect(plan.stdout).not.toContain('route delete 172.20.7.0/26'); // goes with vxlan.calico

    const r = runCli(n, ['run', '--yes', ...nodeArgs(n)]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const after = state(n);
    expectNoCalico(after);
    expect(after).toEqual(withoutCalico(before, calico));
    expect(after.ipt4nft).toContain('-A PREROUTING -p tcp -m tcp --dport 2222 -j MARK --set-xmark 0x7/0xffffffff');
    expect(after.ipsets).toEqual(['site-allow']);
    for (const p of calico.pods) expect(fs.existsSync(path.join(n.root, 'run/netns', p.netns))).toBe(false);
    expect(runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]).stdout).toMatch(/"changed": false/);
  });

  it("--cni calico beside a working Flannel removes only Calico; Flannel's config, interfaces, rules, state and pods stay byte for byte", () => {
    const n = node('calico-beside-flannel');
    const calico = addCalico(n, { pods: 2 });
    const before = state(n);
    const r = runCli(n, ['run', '--yes', '--cni', 'calico', ...nodeArgs(n)]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const after = state(n);
    expectNoCalico(after);
    expect(after).toEqual(withoutCalico(before, calico));
    expect(after.ipt4nft).toContain('FLANNEL-POSTRTG');
    expect(after.links.join('\n')).toMatch(/^cni0 bridge/m);
    for (const p of n.pods) expect(fs.existsSync(path.join(n.root, 'run/netns', p.netns))).toBe(true);
  });

  it("restore after --cni calico recreates the ipsets the run destroyed (and only those that are gone) before Calico's rules that match them", () => {
    const n = node('calico-restore', { flannel: false, pods: 1 });
    addCalico(n, { pods: 1 });
    const setText = (name: string) => inNs(n.ns, 'ipset', ['save', name]);
    const before = state(n);
    const savedBefore = setText('cali40masq-ipam-pools');
    const run = runCli(n, ['run', '--yes', '--json', '--cni', 'calico', ...nodeArgs(n)]);
    expect(run.code).toBe(0);
    const backup = JSON.parse(run.stdout).backup as string;
    expect(ipsets(n)).toEqual(['site-allow']);
    const manifest = JSON.parse(fs.readFileSync(path.join(backup, 'manifest.json'), 'utf8'));
    expect(manifest.ipsets.map((s: { name: string }) => s.name).sort()).toEqual([
      'cali40all-hosts-net',
      'cali40all-ipam-pools',
      'cali40masq-ipam-pools',
    ]);
    expect(fs.readFileSync(path.join(backup, 'firewall/ipset-cali40masq-ipam-pools.save'), 'utf8')).toBe(savedBefore);
    // Calico's agent came back and made one of its sets again, with its own members: it stays as it is.
    inNs(n.ns, 'ipset', ['restore'], 'create cali40all-hosts-net hash:net family inet\nadd cali40all-hosts-net 10.9.0.0/16\n');
    const agents = setText('cali40all-hosts-net');

    const dry = runCli(n, ['restore', backup, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('# would restore: ');
    expect(dry.stdout).toMatch(/, 2 ipsets(,|$)/m);
    expect(dry.stdout).toContain(`ipset restore -file ${backup}/firewall/ipset-cali40masq-ipam-pools.save\n`);
    expect(dry.stdout).toContain(`ipset restore -file ${backup}/firewall/ipset-cali40all-ipam-pools.save\n`);
    expect(dry.stdout).not.toContain('ipset restore -file ' + backup + '/firewall/ipset-cali40all-hosts-net.save');
    expect(dry.stdout).toContain('# ipset cali40all-hosts-net exists: left as it is');
    expect(dry.stdout.indexOf('ipset restore -file')).toBeLessThan(dry.stdout.indexOf('iptables-nft-restore --noflush -w'));
    expect(ipsets(n)).toEqual(['cali40all-hosts-net', 'site-allow']);

    const r = runCli(n, ['restore', backup, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).restored).toMatchObject({ ipsets: 2 });
    const after = state(n);
    expect(after.ipsets).toEqual(before.ipsets);
    expect(setText('cali40masq-ipam-pools')).toBe(savedBefore);
    expect(setText('cali40all-hosts-net')).toBe(agents);
    expect(after.ipt4nft).toEqual(before.ipt4nft);
    expect(after.nft).toEqual(before.nft);

    const again = runCli(n, ['restore', backup, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).restored).toEqual({ paths: 0, firewallRules: 0, nftablesTables: 0, ipsets: 0 });
  });

  it("--cni flannel beside a running Calico removes FLANNEL-POSTRTG and the rest of Flannel, and leaves Calico whole with its pods' namespaces", () => {
    const n = node('flannel-beside-calico');
    const calico = addCalico(n, { pods: 2 });
    const before = state(n);
    const r = runCli(n, ['run', '--yes', '--json', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const netnsPhase = JSON.parse(r.stdout).phases.find((p: { name: string }) => p.name === 'netns');
    expect(
      netnsPhase.steps
        .at(-1)
        .argv.filter((a: string) => a.includes('/run/netns/'))
        .map((a: string) => path.basename(a))
        .sort(),
    ).toEqual(n.pods.map((p) => p.netns).sort());
    const after = state(n);
    expect(after.ipt4nft).not.toMatch(/FLANNEL|flanneld|cbr0/);
    expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1) /m);
    // Calico is exactly as it was.
    const calicoOnly = (s: State) => ({
      links: s.links.filter((l) => /^(cali|vxlan\.calico)/.test(l)),
      routes: s.routes4.split('\n').filter((l) => /cali|172\.20\./.test(l)),
      rules: s.ipt4nft.split('\n').filter((l) => /cali/.test(l)),
      nft: s.nft.split(/\n(?=table )/).filter((t) => t.startsWith('table ip calico ')),
      files: s.files.filter((f) => /calico|k8s-pod-network/.test(f)),
      ipsets: s.ipsets,
    });
    expect(calicoOnly(after)).toEqual(calicoOnly(before));
    for (const p of calico.pods) expect(fs.existsSync(path.join(n.root, 'run/netns', p.netns))).toBe(true);
    expect(fs.existsSync(path.join(n.root, 'etc/cni/net.d/10-calico.conflist'))).toBe(true);
  });

  it("--uncordon refuses with exit 1 when no CNI config is left, and uncordons when the new CNI's config is there", () => {
    const alone = node('uncordon-refused', { pods: 1 });
    const refused = runCli(alone, ['run', '--yes', '--uncordon', ...nodeArgs(alone)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /refusing to uncordon: no CNI config of a pod network left in \/etc\/cni\/net\.d; install the new CNI first/,
    );
    expect(refused.calls.some((c) => c.includes(' uncordon '))).toBe(false);

    const migrating = node('uncordon-ok', { pods: 1 });
    addCalico(migrating, { pods: 1 });
    const ok = runCli(migrating, ['run', '--yes', '--uncordon', '--cni', 'flannel', ...nodeArgs(migrating)]);
    expect(ok.code).toBe(0);
    expect(ok.calls.at(-1)).toMatch(/^kubectl --kubeconfig \S+ uncordon node-1$/);
  });

  it('remove-sandboxes (default; --with remove-sandboxes still accepted) stops and removes the pod sandboxes while the runtime is still up', () => {
    const n = node('sandboxes', { pods: 1 });
    addSandbox(n, { id: 'aaa111', name: 'web-1', namespace: 'default', ip: n.pods[0]!.ip });
    addSandbox(n, { id: 'bbb222', name: 'web-2', namespace: 'default', ip: '10.244.1.77' });
    const r = runCli(n, ['run', '--yes', '--with', 'remove-sandboxes', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const changes = r.calls.filter((c) => !c.includes('is-active') && !c.startsWith('crictl pods') && !c.startsWith('crictl inspectp'));
    expect(changes.slice(1, 5)).toEqual([
      'systemctl stop kubelet.service',
      'crictl stopp aaa111 bbb222',
      'crictl rmp aaa111 bbb222',
      'systemctl stop containerd.service',
    ]);
  });
});

describe('Canal', () => {
  it('is detected by its conflist (calico plugin with host-local IPAM) and removed whole: Flannel networking and Calico policy', () => {
    const n = node('canal', { pods: 0 });
    fs.rmSync(path.join(n.root, 'etc/cni/net.d/10-flannel.conflist'));
    addCalico(n, { pods: 2, canal: true });
    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('# cni: canal (detected)\n#   found canal: config /etc/cni/net.d/10-canal.conflist, ');
    const r = runCli(n, ['run', '--yes', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const after = state(n);
    expectNoCalico(after);
    expect(after.ipt4nft).not.toMatch(/FLANNEL/);
    expect(after.links.join('\n')).not.toMatch(/^flannel\.1 /m);
    expect(after.files.join('\n')).not.toMatch(/run\/flannel/);
  });
});
