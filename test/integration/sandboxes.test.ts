// No pod left without a network: the sandboxes on the removed network are stopped and removed through
// the CRI (the crictl shim answers from state files) while the runtime is up; another CNI's and
// host-network sandboxes stay; --keep-sandboxes, or a runtime that does not answer, lists the pods
// left without a network in the summary and the JSON report.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addCalico, type CalicoInstall } from '../helpers/calico-node.js';
import { addSandbox, sandboxIds } from '../helpers/cri.js';
import { inNs, shimDir, write, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, TestNodes } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 2 });
afterEach(nodes.cleanUp);

/** Flannel with two pods (the second already lost its veth: only lo inside), Calico with one, and a host-network pod. */
function node(tag: string): { n: FlannelNode; calico: CalicoInstall } {
  const n = nodes.make(tag);
  const calico = addCalico(n, { pods: 1 });
  inNs(n.ns, 'ip', ['link', 'delete', n.pods[1]!.veth]);
  const netns = (name: string) => path.join(n.root, 'run/netns', name);
  addSandbox(n, { id: 'f1', name: 'web-1', namespace: 'default', ip: n.pods[0]!.ip, netns: netns(n.pods[0]!.netns) });
  addSandbox(n, { id: 'f2', name: 'dns-1', namespace: 'kube-system', ip: n.pods[1]!.ip, netns: netns(n.pods[1]!.netns) });
  addSandbox(n, { id: 'c1', name: 'api-1', namespace: 'prod', ip: calico.pods[0]!.ip, netns: netns(calico.pods[0]!.netns) });
  addSandbox(n, { id: 'h1', name: 'kube-proxy-x', namespace: 'kube-system', hostNetwork: true });
  return { n, calico };
}

const changes = (calls: string[]) => calls.filter((c) => /^(systemctl (stop|start)|crictl (stopp|rmp))/.test(c));

describe('pod sandboxes on the removed network', () => {
  it("are stopped and removed through the CRI before the runtime stops; Calico's and the host-network pod stay", () => {
    const { n, calico } = node('sandboxes-remove');
    const r = runCli(n, ['run', '--yes', '--json', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(changes(r.calls)).toEqual([
      'systemctl stop kubelet.service',
      'crictl stopp f1 f2',
      'crictl rmp f1 f2',
      'systemctl stop containerd.service',
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
    expect(sandboxIds(n)).toEqual(['c1', 'h1']);
    const report = JSON.parse(r.stdout);
    expect(report.podsWithoutNetwork).toBeUndefined();
    expect(report.phases.find((p: { name: string }) => p.name === 'remove-sandboxes').notes).toEqual([
      `kept pod sandbox prod/api-1 (${calico.pods[0]!.ip}): its pod interface pairs with ${calico.pods[0]!.veth}, which is not the removed CNI's`,
    ]);
  });

  it('--keep-sandboxes removes none, warns in the plan, and lists the pods left without a network', () => {
    const { n } = node('sandboxes-keep');
    const plan = runCli(n, ['plan', '--keep-sandboxes', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(plan.stdout).toContain(
      `# --keep-sandboxes: 2 pods on the removed network keep running without a network: default/web-1 (${n.pods[0]!.ip}), kube-system/dns-1 (${n.pods[1]!.ip})`,
    );
    const r = runCli(n, ['run', '--yes', '--keep-sandboxes', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(r.calls.filter((c) => /crictl (stopp|rmp)/.test(c))).toEqual([]);
    expect(sandboxIds(n)).toEqual(['c1', 'f1', 'f2', 'h1']);
    expect(r.stdout).toContain(
      `cni-sweep: 2 pods left without a network: default/web-1 (${n.pods[0]!.ip}), kube-system/dns-1 (${n.pods[1]!.ip})\n` +
        '  fix: once the runtime is up: crictl stopp f1 f2 && crictl rmp f1 f2 (kubelet creates them again on the new network), or delete the pods\n',
    );
  });

  it('with the runtime not answering, the JSON report lists the pods the removed network holds addresses for', () => {
    const { n } = node('sandboxes-down');
    write(shimDir(n.root), 'units/containerd.service', 'inactive\n');
    const r = runCli(n, ['run', '--yes', '--json', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.podsWithoutNetwork).toEqual(n.pods.map((p) => ({ id: p.cid, ip: p.ip })).sort((a, b) => a.ip.localeCompare(b.ip)));
    expect(report.podsWithoutNetworkFix).toMatch(/^once the runtime is up: crictl stopp \S+ \S+ && crictl rmp /);
    expect(r.stderr).toMatch(
      /remove-sandboxes: crictl pods failed: .*connection error.*: pod sandboxes cannot be removed through the CRI; 2 pods/,
    );
  });

  it('doctor finds the READY pod whose namespace holds only lo, says why, and names the command; the other pods are fine', () => {
    const { n } = node('sandboxes-doctor');
    const r = runCli(n, ['doctor', '--json', ...nodeArgs(n)]);
    expect(r.code).toBe(1);
    const findings = JSON.parse(r.stdout).findings.filter((f: { id: string }) => f.id.startsWith('pod-'));
    expect(findings).toEqual([
      expect.objectContaining({
        id: 'pod-without-network',
        severity: 'error',
        evidence: [
          `pod kube-system/dns-1 (sandbox f2, ${n.pods[1]!.ip}): ${path.join(n.root, 'run/netns', n.pods[1]!.netns)} holds only lo`,
        ],
        fixArgv: ['crictl', 'stopp', 'f2'],
      }),
    ]);
  });
});
