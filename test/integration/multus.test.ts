// Multus in front of Calico or Flannel, on real kernel state in a network namespace and real files
// under a temporary root: removing the CNI Multus delegates to removes the Multus config too (the
// plan says why, the backup keeps it, restore brings it back); removing another CNI keeps it byte
// for byte; --cni multus and --cni whereabouts take only their own files; doctor names the three
// ways a Multus config outlives what it needs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addCalico, CALICO_CONFLIST } from '../helpers/calico-node.js';
import { createFlannelNode, destroyFlannelNode, FLANNEL_CONFLIST, shimDir, write, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, scratch, snapshot, type NodeState, OWN } from '../helpers/harness.js';
import { addMultus, KUBECONFIG, thickConf, thinConf } from '../helpers/multus-node.js';

const made: FlannelNode[] = [];
function node(tag: string): FlannelNode {
  const n = createFlannelNode({ ...scratch(tag), pods: 2, podmanConfig: true });
  made.push(n);
  return n;
}
afterEach(() => {
  while (made.length) destroyFlannelNode(made.pop()!);
});

const state = (n: FlannelNode): NodeState => {
  const s = snapshot(n);
  return { ...s, files: s.files.filter((f) => !OWN.test(f)) };
};
const isCalico = (line: string) => /cali|172\.20\./.test(line);
/** Everything but Calico's links, addresses, routes and rules, to compare before and after. */
const notCalico = (s: NodeState) => ({
  links: s.links.filter((l) => !isCalico(l)),
  addrs: s.addrs.split('\n').filter((l) => !isCalico(l)),
  routes4: s.routes4.split('\n').filter((l) => !isCalico(l)),
  routes6: s.routes6.split('\n').filter((l) => !isCalico(l)),
  ipt4nft: s.ipt4nft.split('\n').filter((l) => !isCalico(l)),
  ipt4legacy: s.ipt4legacy.split('\n').filter((l) => !isCalico(l)),
  nft: s.nft.split(/\n(?=table )/).filter((t) => !t.startsWith('table ip calico ')),
});
const file = (s: NodeState, rel: string) => s.files.find((f) => f.startsWith(`${rel} `));

describe('Multus in front of Calico', () => {
  it('--cni calico removes 00-multus.conf (thin, Calico embedded) with Calico, says why, backs it up; Flannel, podman and multus.d stay byte for byte', () => {
    const n = node('multus-calico');
    addCalico(n, { pods: 2 });
    addMultus(n, thinConf(CALICO_CONFLIST));
    const before = state(n);

    const plan = runCli(n, ['plan', '--cni', 'calico', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(
      '# removes /etc/cni/net.d/00-multus.conf: it delegates to calico (its first delegate, embedded in it), which this run removes; left behind, the runtime still loads it first and every new pod fails in Multus\n',
    );
    expect(plan.stdout).toMatch(
      // One operand per line in the script.
      /^rm -f -- \\\n {2}\S+\/etc\/cni\/net\.d\/10-calico\.conflist \\\n {2}\S+\/calico-kubeconfig \\\n {2}\S+\/etc\/cni\/net\.d\/00-multus\.conf$/m,
    );

    const r = runCli(n, ['run', '--yes', '--json', '--cni', 'calico', ...nodeArgs(n)]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const after = state(n);
    expect(file(after, 'etc/cni/net.d/00-multus.conf')).toBeUndefined();
    expect(after.files.join('\n')).not.toMatch(/calico|k8s-pod-network/);
    expect(after.links.join('\n')).not.toMatch(/^(cali[0-9a-f]{11}|vxlan\.calico) /m);
    expect(notCalico(after)).toEqual(notCalico(before));
    for (const rel of [
      'etc/cni/net.d/10-flannel.conflist',
      'etc/cni/net.d/87-podman-bridge.conflist',
      'etc/cni/net.d/multus.d/multus.kubeconfig',
      'etc/cni/net.d/whereabouts.d/whereabouts.conf',
      'var/lib/cni/multus/0123abcd/results.json',
    ])
      expect(file(after, rel), rel).toBe(file(before, rel));

    // The backup holds it as it was.
    const tar = path.join(JSON.parse(r.stdout).backup as string, 'files.tar');
    expect(execFileSync('tar', ['-xOf', tar, 'etc/cni/net.d/00-multus.conf'], { encoding: 'utf8' })).toBe(thinConf(CALICO_CONFLIST));
  });

  it('--cni flannel keeps a thick 00-multus.conf whose clusterNetwork is Calico, byte for byte', () => {
    const n = node('multus-keep');
    addCalico(n, { pods: 1 });
    addMultus(n, thickConf('/host/etc/cni/net.d/10-calico.conflist'));
    const before = state(n);
    const r = runCli(n, ['run', '--yes', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code, r.stderr).toBe(0);
    const after = state(n);
    expect(file(after, 'etc/cni/net.d/10-flannel.conflist')).toBeUndefined();
    for (const rel of ['etc/cni/net.d/00-multus.conf', 'etc/cni/net.d/10-calico.conflist', 'etc/cni/net.d/87-podman-bridge.conflist'])
      expect(file(after, rel), rel).toBe(file(before, rel));
  });
});

describe('Multus in front of Flannel', () => {
  it('--cni flannel removes 00-multus.conf naming Flannel by clusterNetwork name; --cni calico keeps it', () => {
    const n = node('multus-flannel');
    addCalico(n, { pods: 1 });
    addMultus(n, thickConf('cbr0'));
    const before = state(n);
    const keep = runCli(n, ['plan', '--cni', 'calico', ...nodeArgs(n)]);
    expect(keep.code).toBe(0);
    expect(keep.stdout).toContain('kept (not owned by calico): /etc/cni/net.d/00-multus.conf');
    expect(keep.stdout).not.toMatch(/^(rm .*00-multus\.conf|# removes \/etc\/cni\/net\.d\/00-multus\.conf)/m);
    const r = runCli(n, ['run', '--yes', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code, r.stderr).toBe(0);
    const after = state(n);
    expect(file(after, 'etc/cni/net.d/00-multus.conf')).toBeUndefined();
    expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1) /m);
    for (const rel of [
      'etc/cni/net.d/10-calico.conflist',
      'etc/cni/net.d/87-podman-bridge.conflist',
      'etc/cni/net.d/multus.d/multus.kubeconfig',
    ])
      expect(file(after, rel), rel).toBe(file(before, rel));
    // Calico's kernel state is untouched.
    const calicoOnly = (s: NodeState) => [
      s.links.filter(isCalico),
      s.routes4.split('\n').filter(isCalico),
      s.ipt4nft.split('\n').filter(isCalico),
    ];
    expect(calicoOnly(after)).toEqual(calicoOnly(before));
  });

  it("without --cni, Flannel behind 00-multus.conf is the runtime's CNI: kept, as is Multus; the plan says so", () => {
    const n = node('multus-runtime');
    addMultus(n, thinConf(FLANNEL_CONFLIST));
    const r = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "#   keep flannel: the runtime uses its config /etc/cni/net.d/00-multus.conf (Multus's, the first in lexical order, delegating to it: its first delegate, embedded in it): pods get their network from it",
    );
    expect(r.stdout).toContain('#   keep multus: the runtime uses its config /etc/cni/net.d/00-multus.conf (the first in lexical order)');
  });
});

describe('--cni multus and --cni whereabouts', () => {
  it('take their own files only: every link, route, rule and other file stays byte for byte', () => {
    const n = node('multus-own');
    addMultus(n, thinConf(FLANNEL_CONFLIST));
    write(n.root, 'run/multus/multus.sock', '');
    const before = state(n);

    const m = runCli(n, ['run', '--yes', '--cni', 'multus', ...nodeArgs(n)]);
    expect(m.code, m.stderr).toBe(0);
    const mid = state(n);
    const multusFiles = /^(etc\/cni\/net\.d\/(00-multus\.conf|multus\.d)|var\/lib\/cni\/multus|run\/multus)(\/| )/;
    expect(mid).toEqual({ ...before, files: before.files.filter((f) => !multusFiles.test(f)) });

    const w = runCli(n, ['run', '--yes', '--cni', 'whereabouts', ...nodeArgs(n)]);
    expect(w.code, w.stderr).toBe(0);
    expect(state(n)).toEqual({ ...mid, files: mid.files.filter((f) => !/^etc\/cni\/net\.d\/whereabouts\.d(\/| )/.test(f)) });
  });
});

describe('doctor', () => {
  it("names a delegate that is gone, a kubeconfig that is gone, and a thick socket nothing serves, each with the user's error and the fix", () => {
    const n = node('multus-doctor');
    for (const b of ['multus-shim', 'flannel', 'bridge', 'host-local', 'portmap']) write(n.root, `opt/cni/bin/${b}`, '\x7fELF', 0o755);
    addMultus(n, thickConf('/host/etc/cni/net.d/10-calico.conflist'));
    fs.rmSync(path.join(n.root, KUBECONFIG.slice(1)));
    // The thick config does not name a kubeconfig; a thin one does: make it name the one that is gone.
    const conf = JSON.parse(fs.readFileSync(path.join(n.root, 'etc/cni/net.d/00-multus.conf'), 'utf8')) as Record<string, unknown>;
    write(n.root, 'etc/cni/net.d/00-multus.conf', JSON.stringify({ ...conf, kubeconfig: KUBECONFIG }));
    write(n.root, 'run/multus/multus.sock', '');
    const r = runCli(n, ['doctor', '--json', ...nodeArgs(n)]);
    expect(r.code).toBe(1);
    const findings = (JSON.parse(r.stdout) as { findings: Array<{ id: string; title: string; why: string; fix: string }> }).findings.filter(
      (f) => f.id.startsWith('multus-'),
    );
    const fix = `cni-sweep run --cni multus --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`;
    expect(findings.map((f) => [f.id, f.title, f.fix])).toEqual([
      [
        'multus-delegate-missing',
        '/etc/cni/net.d/00-multus.conf hands pods to a CNI that is not installed: /host/etc/cni/net.d/10-calico.conflist is gone',
        fix,
      ],
      ['multus-kubeconfig-missing', `/etc/cni/net.d/00-multus.conf names a kubeconfig that is gone: ${KUBECONFIG}`, fix],
      [
        'multus-socket-missing',
        "/etc/cni/net.d/00-multus.conf is the thick plugin's, and no multus-daemon serves /run/multus/multus.sock",
        fix,
      ],
    ]);
    for (const f of findings) {
      expect(f.why).toContain('error waiting for pod: Unauthorized');
      expect(f.why).toContain('dial unix /run/multus/multus.sock: connect: connection refused');
    }
    // The fix does what it says: the Multus config and multus.d go, and doctor has no Multus finding left.
    const run = runCli(n, [...fix.split(' ').slice(1), '--yes', ...nodeArgs(n).slice(2)]);
    expect(run.code, run.stderr).toBe(0);
    const again = runCli(n, ['doctor', '--json', ...nodeArgs(n)]);
    expect((JSON.parse(again.stdout) as { findings: Array<{ id: string }> }).findings.filter((f) => f.id.startsWith('multus-'))).toEqual(
      [],
    );
  });
});
