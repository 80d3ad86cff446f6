// `cni-sweep doctor` on real kernel state: for each finding, the state is built in a network
// namespace and a temporary root, the built CLI diagnoses it, and the fix it prints is run: the
// finding must then be gone. Doctor itself never changes anything.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publishedSchema } from '../helpers/schema.js';
import type { DoctorJson } from '../../src/doctor/render.js';
import { addCalico } from '../helpers/calico-node.js';
import { addCilium } from '../helpers/cilium-node.js';
import { inNs, sh, shimDir, write, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { nodeArgs, REPO, runCli, snapshot, TestNodes, type CliOptions } from '../helpers/harness.js';

type Finding = DoctorJson['findings'][number];

const nodes = new TestNodes({ pods: 3 });
afterEach(nodes.cleanUp);
function dirtyNode(tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode {
  const n = nodes.make(tag, o);
  // The API as the shims answer it: this node's pod CIDR, no NetworkPolicy objects.
  kube(n, { podCidrs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], policies: [] });
  return n;
}

function kube(n: FlannelNode, o: { podCidrs?: string[]; policies?: Array<[string, string]> }) {
  const dir = shimDir(n.root);
  if (o.podCidrs)
    write(
      dir,
      'node.json',
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'node-1' },
        spec: { podCIDR: o.podCidrs[0], podCIDRs: o.podCidrs },
      }),
    );
  if (o.policies) {
    const items = o.policies.map(([namespace, name]) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace, name },
      spec: { podSelector: {} },
    }));
    write(dir, 'networkpolicies.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  }
}

/** The running pods, as crictl (the shim) lists them. */
const running = (n: FlannelNode): CliOptions => ({ env: { SHIM_PODS: n.pods.map((p) => p.cid).join(' ') } });

/** Makes the dirty Flannel node one a working Flannel would leave: plugins installed, pod MTUs right, its pods running. */
function makeConsistent(n: FlannelNode) {
  for (const b of ['flannel', 'bridge', 'host-local', 'portmap']) write(n.root, `opt/cni/bin/${b}`, '#!/bin/sh\n', 0o755);
  inNs(n.ns, 'ip', ['-batch', '-'], n.pods.map((p) => `link set ${p.veth} mtu 1450`).join('\n') + '\n');
}

/** Every document doctor prints here is checked against the published schema. */
const doctorSchema = publishedSchema('doctor');

function doctor(n: FlannelNode, args: string[] = [], opts: CliOptions = {}) {
  const r = runCli(n, ['doctor', '--json', ...nodeArgs(n), ...args], opts);
  expect(r.stderr).toBe('');
  const report = JSON.parse(r.stdout) as DoctorJson;
  expect(doctorSchema.issues(report)).toEqual([]);
  expect(r.code).toBe(report.healthy ? 0 : 1);
  // Read-only: the shims saw only questions.
  for (const c of r.calls)
    expect(c).toMatch(
      /^(systemctl is-active |crictl pods -q$|crictl pods -o json$|crictl inspectp -o json \S+$|kubectl --kubeconfig \S+ get (node node-1|networkpolicies -A) -o json$)/,
    );
  return { ...r, report, findings: report.findings };
}

function one(findings: Finding[], id: string): Finding {
  const f = findings.filter((x) => x.id === id);
  expect(f, `${id} in ${findings.map((x) => x.id).join(', ')}`).toHaveLength(1);
  return f[0]!;
}

/**
 * Runs a fix the way the operator would: cni-sweep commands through the built CLI (confirming with
 * --yes, as without a terminal it must), ip commands inside the node's namespace, rm on its files.
 */
function follow(n: FlannelNode, f: Finding, opts: CliOptions = {}) {
  const argv = f.fixArgv!;
  if (argv[0] === 'cni-sweep') {
    const r = runCli(n, [...argv.slice(1), '--yes'], opts);
    expect(r.stderr, r.stdout).not.toMatch(/error/i);
    expect(r.code).toBe(0);
  } else if (argv[0] === 'ip') inNs(n.ns, argv[0], argv.slice(1));
  else if (argv[0] === 'rm' || argv[0] === 'tar') sh(argv[0], argv.slice(1));
  else throw new Error(`not a fix this test can run: ${f.fix}`);
}

const ids = (findings: Finding[]) => findings.map((f) => f.id);
/** The one command that removes a departed Flannel whole, as doctor prints it for this node. */
const removeFlannel = (n: FlannelNode, extra = '') =>
  `cni-sweep run --cni flannel --root ${n.root}${extra} --kubeconfig ${shimDir(n.root)}/kubeconfig`;

describe('a healthy node', () => {
  it('a node with only the base (no CNI) has no findings and exits 0', () => {
    const n = dirtyNode('doc-base', { flannel: false });
    const r = doctor(n);
    expect(r.report).toEqual({
      healthy: true,
      node: 'node-1',
      root: n.root,
      cniInUse: [],
      findings: [],
      recommended: null,
      notChecked: [],
    });
    const t = runCli(n, ['doctor', ...nodeArgs(n)]);
    expect(t.code).toBe(0);
    expect(t.stdout).toBe(
      `cni-sweep doctor: node node-1 (root ${n.root}): healthy, no findings\nCNI in use: none (no CNI config: kubelet reports the node NotReady until a pod network installs one)\n`,
    );
  });

  it('a Flannel node made consistent has no findings, and doctor changed nothing on it', () => {
    const n = dirtyNode('doc-ok');
    makeConsistent(n);
    const before = snapshot(n);
    const r = doctor(n, [], running(n));
    expect(r.findings).toEqual([]);
    expect(r.report.cniInUse).toEqual(['flannel']);
    expect(r.report.notChecked).toEqual([]);
    expect(snapshot(n)).toEqual(before);
  });
});

describe('a dirty Flannel node', () => {
  it('finds the missing plugins, the stale allocations and the pod MTU, with evidence and fixes; following the fix makes it healthy', () => {
    const n = dirtyNode('doc-dirty');
    const r = doctor(n);
    expect(r.code).toBe(1);
    expect(ids(r.findings)).toEqual(['cni-plugin-missing', 'ipam-stale', 'mtu-pod-veth']);
    expect(one(r.findings, 'cni-plugin-missing')).toMatchObject({
      severity: 'error',
      evidence: [
        '/opt/cni/bin: no such directory',
        '/opt/cni/bin/flannel: missing (plugin in /etc/cni/net.d/10-flannel.conflist)',
        "/opt/cni/bin/bridge: missing (flannel's delegate in /etc/cni/net.d/10-flannel.conflist)",
        '/opt/cni/bin/host-local: missing (IPAM flannel hands its delegate in /etc/cni/net.d/10-flannel.conflist)',
        '/opt/cni/bin/portmap: missing (plugin in /etc/cni/net.d/10-flannel.conflist)',
      ],
      fix: removeFlannel(n),
    });
    expect(one(r.findings, 'cni-plugin-missing').why).toContain('The flannel plugin itself is gone');
    expect(one(r.findings, 'ipam-stale')).toMatchObject({
      evidence: [
        'running pod sandboxes (crictl pods -q): 0',
        ...n.pods.map((p) => `/var/lib/cni/networks/cbr0/${p.ip}: container ${p.cid.slice(0, 13)} (eth0)`),
      ],
      // Flannel goes whole: its allocations go with it, backed up by the run, not by a long rm -f.
      fix: removeFlannel(n),
    });
    expect(one(r.findings, 'mtu-pod-veth')).toMatchObject({
      evidence: [...n.pods.map((p) => `${p.veth} on cni0: mtu 1500`), 'flannel.1: mtu 1450 (the overlay pod traffic leaves through)'],
      fix: removeFlannel(n),
    });

    // Flannel's plugin is gone, so Flannel is: one run removes all of it (config, state, devices,
    // host-gw routes, rules), with the pods' allocations and veths, and the node is healthy.
    follow(n, one(r.findings, 'cni-plugin-missing'));
    const healthy = doctor(n);
    expect(healthy.findings).toEqual([]);
    expect(healthy.code).toBe(0);
    const s = snapshot(n);
    expect(s.routes4).not.toContain('10.244.');
    expect(s.ipt4nft).not.toMatch(/FLANNEL|flanneld/);
    // The run kept a backup first.
    expect(fs.readdirSync(path.join(n.root, 'var/backups/cni-sweep'))).toHaveLength(1);
  });

  it('prints the same as text, on stdout, with no colour on a pipe', () => {
    const n = dirtyNode('doc-text');
    const r = runCli(n, ['doctor', ...nodeArgs(n)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      `cni-sweep doctor: node node-1 (root ${n.root}): 3 findings (1 error, 2 warnings)`,
      'CNI in use: flannel (/etc/cni/net.d/10-flannel.conflist)',
      '',
      'error   cni-plugin-missing: /etc/cni/net.d/10-flannel.conflist needs plugins missing from /opt/cni/bin: flannel, bridge, host-local, portmap',
    ]);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('  fix:'))).toEqual(Array(3).fill('  fix:      the recommended command below'));
    expect(r.stdout).toContain(`\nrecommended: ${removeFlannel(n)}\n  fixes:    cni-plugin-missing, ipam-stale, mtu-pod-veth\n`);
    expect(r.stdout).not.toContain('\x1b[');
  });
});

describe('Flannel config, subnet.env and cni0', () => {
  it('a Flannel config without /run/flannel/subnet.env (loadFlannelSubnetEnv failed); the fix removes Flannel, host-gw routes included with --pod-cidr', () => {
    const n = dirtyNode('doc-env');
    makeConsistent(n);
    fs.rmSync(path.join(n.root, 'run/flannel/subnet.env'));
    const r = doctor(n, ['--pod-cidr', '10.244.0.0/16'], running(n));
    const f = one(r.findings, 'flannel-subnet-env-missing');
    expect(f).toMatchObject({
      severity: 'error',
      evidence: [
        '/etc/cni/net.d/10-flannel.conflist: plugin "flannel" (network cbr0), the config the runtime uses',
        '/run/flannel/subnet.env: no such file',
      ],
      fix: removeFlannel(n, ' --pod-cidr 10.244.0.0/16'),
    });
    expect(f.why).toContain('loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory');
    follow(n, f, running(n));
    const after = doctor(n, ['--pod-cidr', '10.244.0.0/16'], running(n));
    expect(after.findings).toEqual([]);
    expect(fs.existsSync(path.join(n.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);
    expect(inNs(n.ns, 'ip', ['-4', 'route', 'show'])).not.toContain('10.244.2.0/24');
  });

  it("cni0 with another subnet than FLANNEL_SUBNET and the Node's podCIDR (already has an IP address different from); the fix clears both", () => {
    const n = dirtyNode('doc-cni0');
    makeConsistent(n);
    inNs(n.ns, 'ip', ['-batch', '-'], 'addr del 10.244.1.1/24 dev cni0\naddr add 10.244.7.1/24 dev cni0\n');
    const r = doctor(n, [], running(n));
    expect(ids(r.findings)).toEqual(['flannel-subnet-mismatch', 'bridge-outside-pod-cidr']);
    expect(one(r.findings, 'flannel-subnet-mismatch')).toMatchObject({
      title: 'cni0 has 10.244.7.1/24, but /run/flannel/subnet.env says FLANNEL_SUBNET=10.244.1.1/24',
      evidence: ['cni0: 10.244.7.1/24', '/run/flannel/subnet.env: FLANNEL_SUBNET=10.244.1.1/24'],
      fix: `cni-sweep run --cni flannel --only backup,interfaces --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`,
    });
    expect(one(r.findings, 'flannel-subnet-mismatch').why).toContain('"cni0" already has an IP address different from 10.244.1.1/24');
    expect(one(r.findings, 'bridge-outside-pod-cidr')).toMatchObject({
      evidence: ['cni0: 10.244.7.1/24', 'pod CIDR of Node node-1 (spec.podCIDRs): 10.244.1.0/24, fd00:10:244:1::/64'],
      fix: `cni-sweep run --cni flannel --only backup,interfaces --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`,
    });
    follow(n, r.findings[0]!, running(n));
    const after = doctor(n, [], running(n));
    expect(after.findings).toEqual([]);
  });
});

describe('two CNIs on one node', () => {
  it("Calico added beside Flannel: Calico's config is first, Flannel's is stale and all its state left over; the one fix removes Flannel and keeps Calico", () => {
    const n = dirtyNode('doc-mig');
    makeConsistent(n);
    const calico = addCalico(n);
    for (const b of ['calico', 'calico-ipam', 'bandwidth']) write(n.root, `opt/cni/bin/${b}`, '#!/bin/sh\n', 0o755);
    inNs(n.ns, 'ip', ['-batch', '-'], calico.pods.map((p) => `link set ${p.veth} mtu 1450`).join('\n') + '\n');
    const r = doctor(n);
    expect(r.report.cniInUse).toEqual(['calico']);
    expect(ids(r.findings)).toEqual(['cni-config-multiple', 'leftover-interfaces', 'ipam-stale', 'leftover-routes', 'leftover-firewall']);
    expect(one(r.findings, 'cni-config-multiple')).toMatchObject({
      severity: 'warning',
      evidence: [
        'runtime uses: /etc/cni/net.d/10-calico.conflist (calico; first in lexical order)',
        'stale: /etc/cni/net.d/10-flannel.conflist (flannel)',
      ],
      fix: removeFlannel(n),
    });
    // Every finding about Flannel has the same fix: running it once clears them all.
    expect(new Set(r.findings.map((f) => f.fix))).toEqual(new Set([removeFlannel(n)]));
    expect(one(r.findings, 'leftover-routes').evidence).toEqual([
      'route: 10.244.2.0/24 via 192.168.1.12 dev eth0',
      'route: fd00:10:244:2::/64 via fd00:1::12 dev eth0 metric 1024',
    ]);
    // portmap's chains are shared with Calico's config (it uses portmap too): not Flannel's to count.
    expect(one(r.findings, 'leftover-firewall').evidence).toEqual([
      'iptables-nft filter: 1 chain (FLANNEL-FWD) holding 2 rules; 1 rule in FORWARD',
      expect.stringMatching(
        /^iptables-nft nat: 6 chains \((CNI-[0-9a-f]{24}|CNI-DN-[0-9a-f]{21}|FLANNEL-POSTRTG)(, (CNI-[0-9a-f]{24}|CNI-DN-[0-9a-f]{21}|FLANNEL-POSTRTG)){3}, \+2\) holding 18 rules; 6 rules in POSTROUTING, CNI-HOSTPORT-DNAT$/,
      ),
      'ip6tables-nft filter: 1 chain (FLANNEL-FWD) holding 2 rules; 1 rule in FORWARD',
      'ip6tables-nft nat: 1 chain (FLANNEL-POSTRTG) holding 3 rules; 1 rule in POSTROUTING',
      'nftables: table ip flannel-ipv4',
    ]);
    follow(n, r.findings[0]!);
    const after = doctor(n);
    expect(after.findings).toEqual([]);
    // Calico is whole: its config, devices and rules.
    expect(fs.existsSync(path.join(n.root, 'etc/cni/net.d/10-calico.conflist'))).toBe(true);
    const s = snapshot(n);
    expect(s.links.join('\n')).toMatch(/^vxlan\.calico /m);
    expect(s.links.join('\n')).not.toMatch(/^(cni0|flannel\.1) /m);
    expect(s.ipt4nft).toContain('cali-FORWARD');
    expect(s.ipt4nft).not.toContain('FLANNEL');
  });

  it('Calico removed without cleanup: cali* veths, vxlan.calico, proto bird/80 routes, cali- chains, its nftables table and ipsets; the fixes clear them', () => {
    const n = dirtyNode('doc-cal', { flannel: false });
    const calico = addCalico(n);
    fs.rmSync(path.join(n.root, 'etc/cni/net.d/10-calico.conflist'));
    fs.rmSync(path.join(n.root, 'etc/cni/net.d/calico-kubeconfig'));
    const r = doctor(n);
    expect(ids(r.findings)).toEqual(['leftover-interfaces', 'leftover-routes', 'leftover-firewall']);
    expect(one(r.findings, 'leftover-interfaces')).toMatchObject({
      title: "calico's interfaces remain while calico is not in use: vxlan.calico, 2 pod veths",
      evidence: ['vxlan.calico (vxlan): up, 172.20.5.0/32', `2 pod veths: ${calico.pods.map((p) => p.veth).join(' ')}`],
      fix: `cni-sweep run --cni calico --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`,
    });
    expect(one(r.findings, 'leftover-routes')).toMatchObject({
      // The proto 80 route through vxlan.calico goes with the device and is not listed.
      evidence: [
        'route: blackhole 172.20.5.0/26 proto bird',
        'route: 172.20.6.0/26 via 192.168.1.12 dev eth0 proto bird',
        'route: blackhole 172.20.8.0/26 proto 80',
      ],
      fix: `cni-sweep run --cni calico --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`,
    });
    const fw = one(r.findings, 'leftover-firewall');
    expect(fw.evidence).toHaveLength(6);
    expect(fw.evidence).toContain('nftables: table ip calico');
    expect(fw.evidence).toContain('3 ipsets: cali40masq-ipam-pools, cali40all-ipam-pools, cali40all-hosts-net');
    expect(fw.evidence).toContainEqual(
      expect.stringMatching(/^iptables-nft filter: 10 chains \(.*\) holding 13 rules; 4 rules in INPUT, FORWARD, OUTPUT$/),
    );
    expect(fw.fix).toBe(`cni-sweep run --cni calico --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`);
    follow(n, fw);
    const after = doctor(n);
    expect(after.findings).toEqual([]);
    expect(after.code).toBe(0);
  });
});

describe('policy routing of a CNI gone', () => {
  it("Cilium removed without cleanup: its proxy rules and table 2004 are reported with the run that removes them; the moved local rule and the site's rule stay", () => {
    const n = dirtyNode('doc-cil', { flannel: false });
    addCilium(n, { pods: 1, mount: false, policyRouting: true });
    inNs(n.ns, 'ip', ['rule', 'add', 'priority', '9', 'from', '10.9.0.0/16', 'lookup', '100']);
    fs.rmSync(path.join(n.root, 'etc/cni/net.d/05-cilium.conflist'));
    const r = doctor(n);
    const f = one(r.findings, 'leftover-policy-routing');
    const fix = `cni-sweep run --cni cilium --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`;
    // Table 2005's routes go through cilium_host: they go with it (leftover-interfaces).
    expect(f).toMatchObject({
      severity: 'warning',
      title: "cilium's policy routing remains while cilium is not in use: 2 ip rules, 1 route in its tables",
      evidence: [
        'ip -4 rule: priority 9 fwmark 0x200/0xf00 table 2004',
        'ip -4 rule: priority 10 fwmark 0xa00/0xf00 table 2005',
        'ip -4 route: local default dev lo table 2004 proto kernel',
      ],
      fix,
    });
    expect(r.report.recommended?.command).toBe(fix);
    expect(r.report.recommended?.fixes).toContain('leftover-policy-routing');
    follow(n, f);
    expect(ids(doctor(n).findings)).not.toContain('leftover-policy-routing');
    const rules = inNs(n.ns, 'ip', ['-N', '-4', 'rule', 'show']);
    expect(rules).toMatch(/^9:\s+from 10\.9\.0\.0\/16 lookup 100 *$/m);
    expect(rules).toMatch(/^100:\s+from all lookup 255 *$/m);
    expect(rules).not.toMatch(/lookup 200[45]/);
  });
});

describe('BPF state of a CNI gone', () => {
  const bpffsMounts: string[] = [];
  afterEach(() => {
    while (bpffsMounts.length) spawnSync('umount', ['--lazy', bpffsMounts.pop()!]);
  });

  it("Cilium's programs left on the uplink (tc and XDP) and its pinned maps: reported and removed by the recommended run; a site's program and pin stay", () => {
    const n = dirtyNode('doc-bpf', { flannel: false });
    const bpffs = path.join(n.root, 'sys/fs/bpf');
    fs.mkdirSync(bpffs, { recursive: true });
    sh('mount', ['-t', 'bpf', 'bpf', bpffs]);
    bpffsMounts.push(bpffs);
    // fixtures/bpf/progs.o: Cilium's program names (cil_from_netdev, cil_to_netdev, cil_xdp_entry) and a site's.
    const obj = path.join(REPO, 'fixtures/bpf/progs.o');
    const load = (cmd: string, ...args: string[]) => inNs(n.ns, 'env', [`TC_BPF_MNT=${bpffs}`, cmd, ...args]);
    load('tc', 'qdisc', 'add', 'dev', 'eth0', 'clsact');
    load('tc', 'filter', 'add', 'dev', 'eth0', 'ingress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', obj, 'sec', 'tc-cil-from');
    load('tc', 'filter', 'add', 'dev', 'eth0', 'egress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', obj, 'sec', 'tc-site');
    load('ip', 'link', 'set', 'dev', 'eth0', 'xdpgeneric', 'obj', obj, 'sec', 'xdp-cil');
    fs.mkdirSync(path.join(bpffs, 'tc/globals'), { recursive: true });
    fs.mkdirSync(path.join(bpffs, 'site'), { recursive: true });
    sh('python3', [
      path.join(REPO, 'test/helpers/bpf-pin.py'),
      path.join(bpffs, 'tc/globals/cilium_ipcache'),
      path.join(bpffs, 'site/counters'),
    ]);
    const r = doctor(n);
    const fix = `cni-sweep run --cni cilium --root ${n.root} --kubeconfig ${shimDir(n.root)}/kubeconfig`;
    // The site's egress program shares eth0's clsact: the qdisc stays.
    expect(one(r.findings, 'leftover-bpf')).toMatchObject({
      title: "cilium's BPF state remains while cilium is not in use: 2 attached programs, 1 bpffs pin",
      evidence: [
        'BPF attachment: tc filter eth0 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'BPF pin: /sys/fs/bpf/tc/globals/cilium_ipcache',
        'BPF attachment: XDP eth0 generic (cil_xdp_entry)',
      ],
      fix,
    });
    follow(n, one(r.findings, 'leftover-bpf'));
    expect(ids(doctor(n).findings)).not.toContain('leftover-bpf');
    expect(inNs(n.ns, 'tc', ['filter', 'show', 'dev', 'eth0', 'egress'])).toMatch(/site/);
    expect(fs.existsSync(path.join(bpffs, 'site/counters'))).toBe(true);
    expect(fs.existsSync(path.join(bpffs, 'tc/globals/cilium_ipcache'))).toBe(false);
  });
});

describe('IPAM', () => {
  it('a range 90% used by allocations of pods that are gone: stale and near exhaustion; removing the stale files clears both', () => {
    const n = dirtyNode('doc-ipam');
    makeConsistent(n);
    // 3 running pods (.2-.4) and 226 leaked allocations (.5-.230): 229 of the 253 host-local can hand out.
    for (let i = 5; i <= 230; i++)
      write(n.root, `var/lib/cni/networks/cbr0/10.244.1.${i}`, `${i.toString(16).padStart(64, '0')}\r\neth0`, 0o600);
    const r = doctor(n, [], running(n));
    expect(ids(r.findings)).toEqual(['ipam-stale', 'ipam-exhaustion']);
    const stale = one(r.findings, 'ipam-stale');
    expect(stale.title).toBe('226 IP allocations in /var/lib/cni/networks/cbr0 belong to no running pod');
    expect(stale.evidence[0]).toBe('running pod sandboxes (crictl pods -q): 3');
    expect(stale.evidence).toContain('/var/lib/cni/networks/cbr0/10.244.1.5: container 0000000000000 (eth0)');
    // Flannel is in use: only the stale files go, into an archive beside the IPAM dirs (no rm -f of 226 paths).
    const archive = `${n.root}/var/lib/cni/stale-ipam-cbr0.tar`;
    expect(stale.fixArgv!.slice(0, 7)).toEqual([
      'tar',
      '-C',
      `${n.root}/var/lib/cni/networks/cbr0`,
      '--remove-files',
      '-rf',
      archive,
      '--',
    ]);
    expect(stale.fixArgv).toHaveLength(7 + 226);
    expect(one(r.findings, 'ipam-exhaustion')).toMatchObject({
      severity: 'warning',
      title: '/var/lib/cni/networks/cbr0 is 90.5% full: 229 of 253 addresses in 10.244.1.1-10.244.1.254',
      evidence: [
        '/var/lib/cni/networks/cbr0: 229 of 253 addresses allocated in 10.244.1.1-10.244.1.254 (/run/flannel/subnet.env FLANNEL_SUBNET=10.244.1.1/24)',
        '226 of them belong to no running pod',
      ],
      fix: stale.fix,
    });
    expect(one(r.findings, 'ipam-exhaustion').why).toContain('no IP addresses available in range set: 10.244.1.1-10.244.1.254');
    follow(n, stale);
    expect(doctor(n, [], running(n)).findings).toEqual([]);
    // Nothing is lost: the archive holds every stale allocation, its container ID included.
    const kept = sh('tar', ['-tf', archive]).trim().split('\n');
    expect(kept).toHaveLength(226);
    expect(sh('tar', ['-xOf', archive, '10.244.1.5'])).toBe(`${(5).toString(16).padStart(64, '0')}\r\neth0`);
    // The running pods' allocations stayed.
    for (const p of n.pods) expect(fs.existsSync(path.join(n.root, 'var/lib/cni/networks/cbr0', p.ip))).toBe(true);
  });

  it('with the runtime stopped (crictl cannot reach it, systemctl says inactive) no allocation can belong to a running pod', () => {
    const n = dirtyNode('doc-ipam-down');
    makeConsistent(n);
    write(shimDir(n.root), 'units/containerd.service', 'inactive\n');
    const r = doctor(n, [], { env: { SHIM_FAIL: 'crictl pods*' } });
    const f = one(r.findings, 'ipam-stale');
    expect(f.evidence[0]).toBe(
      'no container runtime is running (cri-docker.service inactive, docker.service inactive, containerd.service inactive, crio.service inactive, ' +
        'k3s.service inactive, k3s-agent.service inactive, rke2-server.service inactive, rke2-agent.service inactive): no allocation can belong to a running pod',
    );
    expect(f.evidence).toHaveLength(4);
    // The distribution first (its units), then the runtime check; crictl pods -o json (the pods check) fails the same way.
    expect(r.calls.filter((c) => c !== 'crictl pods -o json').slice(0, 3)).toEqual([
      'systemctl is-active kubelet.service cri-docker.service docker.socket docker.service containerd.service crio.service k3s.service k3s-agent.service rke2-server.service rke2-agent.service snap.microk8s.daemon-kubelite.service snap.microk8s.daemon-containerd.service',
      'crictl pods -q',
      'systemctl is-active cri-docker.service docker.service containerd.service crio.service k3s.service k3s-agent.service rke2-server.service rke2-agent.service',
    ]);
  });
});

describe('MTU', () => {
  it("flannel.1 above the uplink MTU minus VXLAN's 50 bytes (the uplink MTU went down): the silent drop; the printed ip command fixes it", () => {
    const n = dirtyNode('doc-mtu');
    makeConsistent(n);
    // The kernel keeps a VXLAN device below its lower device's MTU when set, not when the lower one shrinks later.
    inNs(n.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1400']);
    const r = doctor(n, [], running(n));
    expect(r.findings).toEqual([
      {
        id: 'mtu-overlay',
        severity: 'error',
        title: "flannel.1's MTU 1450 is above what eth0 can carry after VXLAN (1350)",
        evidence: ['flannel.1: mtu 1450 (VXLAN adds 50 bytes)', "eth0: mtu 1400 (uplink: the default route's device)"],
        why: expect.stringContaining('dropped on eth0 without an error or ICMP'),
        fix: 'ip link set dev flannel.1 mtu 1350',
        fixArgv: ['ip', 'link', 'set', 'dev', 'flannel.1', 'mtu', '1350'],
      },
    ]);
    follow(n, r.findings[0]!);
    // The overlay is right now; the pods and FLANNEL_MTU still carry the old MTU, and doctor says so.
    const after = doctor(n, [], running(n));
    expect(ids(after.findings)).toEqual(['mtu-pod-veth', 'mtu-flannel-env']);
    expect(one(after.findings, 'mtu-pod-veth').evidence.slice(-1)).toEqual([
      'flannel.1: mtu 1350 (the overlay pod traffic leaves through)',
    ]);
  });

  it("FLANNEL_MTU above flannel.1's MTU: new pods would get it", () => {
    const n = dirtyNode('doc-mtu-env');
    makeConsistent(n);
    const env = path.join(n.root, 'run/flannel/subnet.env');
    fs.writeFileSync(env, fs.readFileSync(env, 'utf8').replace('FLANNEL_MTU=1450', 'FLANNEL_MTU=1500'));
    const r = doctor(n, [], running(n));
    expect(r.findings).toEqual([
      expect.objectContaining({
        id: 'mtu-flannel-env',
        severity: 'warning',
        evidence: ['/run/flannel/subnet.env: FLANNEL_MTU=1500', 'flannel.1: mtu 1450'],
        fix: `kubectl --kubeconfig ${shimDir(n.root)}/kubeconfig -n kube-flannel delete pod -l app=flannel --field-selector spec.nodeName=node-1`,
      }),
    ]);
  });
});

describe('routes, firewall backends, NetworkPolicy', () => {
  it('a host-gw route via a gateway off the segment (onlink); the printed ip route delete fixes it', () => {
    const n = dirtyNode('doc-hgw');
    makeConsistent(n);
    inNs(n.ns, 'ip', ['route', 'add', '10.244.3.0/24', 'via', '10.9.9.12', 'dev', 'eth0', 'onlink']);
    const r = doctor(n, [], running(n));
    expect(r.findings).toEqual([
      {
        id: 'hostgw-gateway-unreachable',
        severity: 'error',
        title: "Pod subnet 10.244.3.0/24 is routed via 10.9.9.12, which is not on eth0's segment",
        evidence: [
          'route: 10.244.3.0/24 via 10.9.9.12 dev eth0 onlink',
          'connected routes on eth0: 192.168.1.0/24; none covers 10.9.9.12',
          'pod network: 10.244.0.0/16, fd00:10:244::/56',
        ],
        why: expect.stringContaining('host-gw needs every node on one L2 segment'),
        fix: 'ip route delete 10.244.3.0/24 via 10.9.9.12 dev eth0',
        fixArgv: ['ip', 'route', 'delete', '10.244.3.0/24', 'via', '10.9.9.12', 'dev', 'eth0'],
      },
    ]);
    follow(n, r.findings[0]!);
    expect(doctor(n, [], running(n)).findings).toEqual([]);
    // The good host-gw route to 10.244.2.0/24 stayed.
    expect(inNs(n.ns, 'ip', ['-4', 'route', 'show'])).toContain('10.244.2.0/24 via 192.168.1.12 dev eth0');
  });

  it("kube-proxy's chains in iptables-nft and iptables-legacy at once", () => {
    const n = dirtyNode('doc-split');
    makeConsistent(n);
    inNs(
      n.ns,
      'iptables-legacy-restore',
      ['--noflush'],
      '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n',
    );
    const r = doctor(n, [], running(n));
    const f = one(r.findings, 'iptables-split-backends');
    expect(f.severity).toBe('warning');
    expect(f.evidence).toEqual([
      expect.stringMatching(/^iptables-nft: 14 chains \(.*KUBE-FORWARD.*\), 42 rules in or to them$/),
      'iptables-legacy: 2 chains (KUBE-POSTROUTING, KUBE-SERVICES), 2 rules in or to them',
    ]);
    expect(f.why).toContain('iptables-legacy holds fewer rules and is probably the stale side');
    expect(f.fix).toBeNull();
  });

  it("NetworkPolicy objects while this node's pods use Flannel alone", () => {
    const n = dirtyNode('doc-np');
    makeConsistent(n);
    kube(n, {
      policies: [
        ['prod', 'deny-all'],
        ['prod', 'allow-web'],
      ],
    });
    const r = doctor(n, [], running(n));
    expect(r.findings).toEqual([
      expect.objectContaining({
        id: 'networkpolicy-unenforced',
        severity: 'warning',
        evidence: [
          'kubectl get networkpolicies -A: prod/deny-all, prod/allow-web',
          'runtime uses: /etc/cni/net.d/10-flannel.conflist (flannel)',
        ],
        fix: null,
      }),
    ]);
  });

  it('bad usage exits 2', () => {
    const n = dirtyNode('doc-usage', { flannel: false });
    const r = runCli(n, ['doctor', ...nodeArgs(n), '--pod-cidr', 'ten']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('cni-sweep: error: --pod-cidr: not a CIDR: ten\n');
  });
});
