// k3s, rke2 and microk8s nodes on real kernel state: each distribution's layout in a temporary root
// (conf dirs, symlinks, data dirs), its units in the systemctl shim, and what it adds to the rules.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addCalico } from '../helpers/calico-node.js';
import { makeK3s, makeMicrok8s, makeRke2, probingSystemctl, SNAP, SNAP_REV } from '../helpers/distro-node.js';
import { inNs, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, snapshot, TestNodes } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 3 });
afterEach(nodes.cleanUp);
const node = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

const NETPOL = /KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-|kube-router netpol/;
/** kube-proxy's lines (and chains) in a save: every KUBE- line that is not kube-router's netpol. */
const kubeProxy = (save: string) =>
  save
    .split('\n')
    .filter((l) => /KUBE-/.test(l) && !NETPOL.test(l))
    .join('\n');
const ipsets = (n: FlannelNode) => inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean).sort();
/** The service calls and the probes taken just before each stop and start, in order. */
const serviceCalls = (calls: string[]) => calls.filter((c) => /^(probe |systemctl (stop|start) )/.test(c));
const exists = (n: { root: string }, p: string) => fs.existsSync(path.join(n.root, p));
const probeDir = (n: { root: string }) => path.join(path.dirname(n.root), 'probe');

describe('k3s', () => {
  it('agent: stops k3s-agent before removing anything and starts it after; removes its conflist, Flannel and its netpol, keeps kube-proxy', () => {
    const n = node('k3s-agent');
    const k3s = makeK3s(n, { role: 'agent' });
    const conf = path.join(n.root, k3s.confDir, '10-flannel.conflist');
    const before = snapshot(n);
    expect(before.ipt4nft).toMatch(/KUBE-POD-FW-.*REJECT/);
    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)], { pathBefore: [probingSystemctl(probeDir(n), conf, 'cni0')] });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.distro).toEqual({ name: 'k3s', role: 'agent', evidence: expect.arrayContaining(['unit k3s-agent.service active']) });
    expect(report.cni).toEqual(['flannel']);
    // One unit holds kubelet, containerd and Flannel: one stop before the first removal, one start after the last.
    expect(serviceCalls(r.calls)).toEqual([
      'probe stop file=present link=present',
      'systemctl stop k3s-agent.service',
      'probe start file=gone link=gone',
      'systemctl start k3s-agent.service',
    ]);
    const after = snapshot(n);
    expect(exists(n, `${k3s.confDir}/10-flannel.conflist`)).toBe(false);
    expect(exists(n, `${k3s.dataDir}/agent/etc/flannel/net-conf.json`)).toBe(false);
    // k3s's own files stay: its config, the multi-call cni binary and its links.
    expect(exists(n, 'etc/rancher/k3s/config.yaml')).toBe(true);
    expect(fs.readlinkSync(path.join(n.root, k3s.realBinDir, 'flannel'))).toBe('cni');
    expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1|veth[0-9a-f]{8}) /m);
    expect(after.ipt4nft).not.toMatch(NETPOL);
    expect(after.ipt4nft).not.toMatch(/FLANNEL|CNI-/);
    expect(kubeProxy(after.ipt4nft)).toBe(kubeProxy(before.ipt4nft));
    for (const c of [
      'KUBE-SERVICES',
      'KUBE-SVC-NPX46M4PTMTKRN6Y',
      'KUBE-SEP-ABCDEF0123456789',
      'KUBE-FIREWALL',
      'KUBE-KUBELET-CANARY',
      'KUBE-NODEPORTS',
      'KUBE-PROXY-CANARY',
      'KUBE-MARK-DROP',
      'KUBE-FORWARD',
    ])
      expect(after.ipt4nft).toContain(`:${c} -`);
    expect(ipsets(n)).toEqual(['KUBE-CLUSTER-IP', 'site-blocklist']);
  });

  it('server with a data dir from config.yaml: the plan names it, stops k3s.service, and removes the conflist there', () => {
    const n = node('k3s-server', { pods: 1 });
    const k3s = makeK3s(n, { role: 'server', dataDir: '/srv/k3s' });
    const r = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '# distro: k3s (server): unit k3s.service active, path /usr/local/bin/k3s, path /etc/rancher/k3s/config.yaml, data dir /srv/k3s (/etc/rancher/k3s/config.yaml)\n',
    );
    expect(r.stdout).toContain(
      '\n# == stop-kubelet: stop kubelet so it does not set pods up again mid-cleanup\nsystemctl stop k3s.service\n',
    );
    expect(r.stdout).toContain('# the container runtime runs inside k3s.service or k3s-agent.service: stopped and started with it\n');
    expect(r.stdout).toContain(`${n.root}/srv/k3s/agent/etc/cni/net.d/10-flannel.conflist`);
    expect(r.stdout).not.toContain('/var/lib/rancher/k3s');
    // The plan as bash reaches what a run does: the conflist under the configured data dir goes.
    const run = runCli(n, ['run', '--yes', ...nodeArgs(n)]);
    expect(run.code).toBe(0);
    expect(exists(n, `${k3s.confDir}/10-flannel.conflist`)).toBe(false);
    expect(run.calls.filter((c) => /^systemctl (stop|start)/.test(c))).toEqual([
      'systemctl stop k3s.service',
      'systemctl start k3s.service',
    ]);
  });

  it("removing another CNI keeps portmap's CNI-HOSTPORT-* chains, k3s's config and its netpol: k3s's config uses portmap", () => {
    const n = node('k3s-hostport', { pods: 2 });
    const k3s = makeK3s(n, { role: 'agent' });
    addCalico(n, { pods: 1 });
    const before = snapshot(n);
    const r = runCli(n, ['run', '--yes', '--cni', 'calico', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const after = snapshot(n);
    expect(exists(n, `${k3s.confDir}/10-flannel.conflist`)).toBe(true);
    expect(exists(n, 'etc/cni/net.d/10-calico.conflist')).toBe(false);
    const hostport = (s: string) => s.split('\n').filter((l) => /CNI-HOSTPORT-|CNI-DN-/.test(l));
    expect(hostport(after.ipt4nft)).toEqual(hostport(before.ipt4nft));
    expect(hostport(after.ipt4nft).length).toBeGreaterThan(4);
    const netpol = (s: string) => s.split('\n').filter((l) => NETPOL.test(l));
    expect(netpol(after.ipt4nft)).toEqual(netpol(before.ipt4nft));
    expect(after.ipt4nft).not.toMatch(/cali/);
  });
});

describe('rke2', () => {
  it('server with Canal and flannel.4096: stops rke2-server first, removes Canal, starts it again', () => {
    const n = node('rke2', { pods: 0 });
    makeRke2(n, 'server');
    addCalico(n, { pods: 2, canal: true });
    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)], {
      pathBefore: [probingSystemctl(probeDir(n), path.join(n.root, 'etc/cni/net.d/10-canal.conflist'), 'flannel.4096')],
    });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.distro).toMatchObject({ name: 'rke2', role: 'server' });
    expect(report.cni).toEqual(['canal']);
    expect(serviceCalls(r.calls)).toEqual([
      'probe stop file=present link=present',
      'systemctl stop rke2-server.service',
      'probe start file=gone link=gone',
      'systemctl start rke2-server.service',
    ]);
    const after = snapshot(n);
    expect(after.links.join('\n')).not.toMatch(/^(flannel\.4096|vxlan\.calico|cali[0-9a-f]{11}) /m);
    expect(exists(n, 'etc/rancher/rke2/config.yaml')).toBe(true);
  });
});

describe('microk8s', () => {
  it("stops kubelite then containerd, removes Calico's config and state inside the snap (not through the symlinks), and kubelite's FORWARD rules", () => {
    const n = node('microk8s', { flannel: false });
    addCalico(n, { pods: 2 });
    makeMicrok8s(n);
    const conf = path.join(n.root, SNAP_REV, 'args/cni-network/10-calico.conflist');
    const before = snapshot(n);
    expect(before.ipt4nft).toContain('generated for MicroK8s pods');
    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)], { pathBefore: [probingSystemctl(probeDir(n), conf, 'vxlan.calico')] });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.distro).toMatchObject({ name: 'microk8s', role: null });
    expect(report.cni).toEqual(['calico']);
    expect(serviceCalls(r.calls)).toEqual([
      'probe stop file=present link=present',
      'systemctl stop snap.microk8s.daemon-kubelite.service',
      'probe stop file=present link=present',
      'systemctl stop snap.microk8s.daemon-containerd.service',
      'probe start file=gone link=gone',
      'systemctl start snap.microk8s.daemon-containerd.service',
      'probe start file=gone link=gone',
      'systemctl start snap.microk8s.daemon-kubelite.service',
    ]);
    // The files went from the real dir; the snap's symlinks (its own) are still links.
    expect(exists(n, `${SNAP_REV}/args/cni-network/10-calico.conflist`)).toBe(false);
    expect(exists(n, `${SNAP_REV}/args/cni-network/calico-kubeconfig`)).toBe(false);
    expect(exists(n, `${SNAP_REV}/args/cni-network/cni.yaml`)).toBe(true);
    expect(exists(n, `${SNAP_REV}/var/lib/calico`)).toBe(false);
    expect(exists(n, `${SNAP_REV}/var/run/calico`)).toBe(false);
    expect(exists(n, `${SNAP}/common/var/log/calico`)).toBe(false);
    expect(fs.lstatSync(path.join(n.root, 'etc/cni/net.d')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(n.root, SNAP, 'current'))).toBe('7229');
    const after = snapshot(n);
    expect(after.ipt4nft).not.toContain('generated for MicroK8s pods');
    expect(after.ipt4nft).not.toMatch(/cali/);
    expect(after.links.join('\n')).not.toMatch(/^(vxlan\.calico|cali[0-9a-f]{11}) /m);
  });
});

describe('--distro', () => {
  it('overrides detection, and an unknown name exits 2 with the list', () => {
    const n = node('distro-flag', { pods: 1 });
    const plan = runCli(n, ['plan', '--json', '--distro', 'rke2', ...nodeArgs(n)]);
    expect(plan.code).toBe(0);
    const report = JSON.parse(plan.stdout);
    expect(report.distro).toEqual({ name: 'rke2', role: null, evidence: ['--distro'] });
    // rke2's units, not kubeadm's: none is active on this node, so nothing is stopped.
    expect(report.phases.find((p: { name: string }) => p.name === 'stop-kubelet').notes).toEqual([
      'none of rke2-server.service, rke2-agent.service is running',
    ]);
    const bad = runCli(n, ['plan', '--distro', 'openshift', ...nodeArgs(n)]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'cni-sweep: error: unknown distribution "openshift"\n  hint: known distributions: kubeadm, k3s, rke2, microk8s\n',
    );
  });
});
