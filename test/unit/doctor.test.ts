// `cni-sweep doctor` on fake nodes: each finding with its exact evidence and fix, a healthy node
// with none, exit codes, and that it only ever reads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishedSchema } from '../helpers/schema.js';
import { main } from '../../src/cli.js';
import { leftoverFirewall } from '../../src/doctor/checks/leftover-firewall.js';
import { leftoverInterfaces } from '../../src/doctor/checks/leftover-interfaces.js';
import { mtu } from '../../src/doctor/checks/mtu.js';
import { networkPolicy } from '../../src/doctor/checks/network-policy.js';
import { CHECKS } from '../../src/doctor/index.js';
import { gatherView } from '../../src/doctor/view.js';
import { Gaps } from '../../src/inspect.js';
import { readProfileFile } from '../../src/profiles/files.js';
import { knownProfiles, loadProfiles } from '../../src/profiles/index.js';
import type { Profile } from '../../src/profiles/schema.js';
import type { DoctorJson } from '../../src/doctor/render.js';
import type { FakeHost } from '../../src/host/fake.js';
import { CALICO_CONFLIST, CANAL_CONFLIST, calicoRules } from '../helpers/calico-node.js';
import { FLANNEL_CONFLIST, PODMAN_CONFLIST } from '../helpers/flannel-node.js';
import { KUBE_ROUTER_CONFLIST } from '../helpers/kube-router-node.js';
import { addQdisc, addTcFilter, attachXdp, mountBpffs } from '../../src/host/fake/bpf.js';
import { addRule, addTableRoute } from '../../src/host/fake/rules.js';
import { dirtyFlannelNode, foreignNode, type Pod } from './fake-node.js';
import { Capture, isolateKubeconfigEnv } from './helpers.js';

isolateKubeconfigEnv();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-doctor-'));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Read-only commands doctor may issue. */
const READS = [
  /^ip -d -j addr show$/,
  /^ip -j -d addr show$/,
  /^ip -j -[46] route show table main$/,
  /^ip6?tables-(nft|legacy)-save$/,
  /^nft -j list tables$/,
  /^nft list flowtables$/,
  /^ipset list -n$/,
  /^systemctl is-active( \S+)+$/,
  /^crictl pods -q$/,
  /^crictl pods -o json$/,
  /^crictl inspectp -o json \S+$/,
  /^nsenter --net=\S+ ip -j -d link show$/,
  /^kubectl --kubeconfig \S+ get (node \S+|networkpolicies -A) -o json$/,
  // The routes and bpf phases' reads, for the policy routing and BPF state of CNIs not in use.
  /^ip -N -j -[46] rule show$/,
  /^ip -j -[46] route show table \d+$/,
  /^tc -j qdisc show$/,
  /^tc -j filter show dev \S+ (ingress|egress)$/,
  /^findmnt -J -t bpf -o TARGET$/,
];

type Json = DoctorJson['findings'][number];

async function doctor(host: FakeHost, args: string[] = [], io: { stdoutTty?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const out = new Capture();
  const err = new Capture();
  if (io.stdoutTty) (out as unknown as { isTTY: boolean }).isTTY = true;
  const code = await main(['doctor', '--node', 'node-1', ...args], {
    stdout: out.stream,
    stderr: err.stream,
    stdinIsTty: false,
    stderrIsTty: false,
    env: io.env ?? {},
    makeHost: () => host,
  });
  // Doctor never changes the node, and asks only read-only questions.
  expect(host.calls).toEqual([]);
  for (const q of host.queries)
    expect(
      READS.some((r) => r.test(q.join(' '))),
      q.join(' '),
    ).toBe(true);
  const report = args.includes('--json') && out.text ? (JSON.parse(out.text) as DoctorJson) : null;
  return { code, stdout: out.text, stderr: err.text, report, findings: report?.findings ?? [] };
}

const json = (host: FakeHost, args: string[] = []) => doctor(host, ['--json', ...args]);
const byId = (findings: Json[], id: string) => findings.filter((f) => f.id === id);
const one = (findings: Json[], id: string) => {
  const f = byId(findings, id);
  expect(f, `${id} in ${findings.map((x) => x.id).join(', ')}`).toHaveLength(1);
  return f[0];
};

const FLANNEL_BINS = ['flannel', 'bridge', 'host-local', 'portmap'];
/** One run removes a departed Flannel whole: every phase that has something of it. */
const REMOVE_FLANNEL = 'cni-sweep run --cni flannel';
const REMOVE_CALICO = 'cni-sweep run --cni calico';
/** What doctor says it left out when no kubeconfig is found (the lookup run's drain uses). */
const NO_KUBE =
  "the Kubernetes API (the Node's pod CIDR, NetworkPolicy objects): no kubeconfig (--kubeconfig, $KUBECONFIG or /etc/kubernetes/admin.conf)";
const CALICO_BINS = ['calico', 'calico-ipam', 'portmap', 'bandwidth'];

function installBins(host: FakeHost, bins: string[]) {
  for (const b of bins) host.writeFile(`/opt/cni/bin/${b}`, '\x7fELF', 0o755);
}

/** The dirty Flannel node made consistent: plugins installed, every allocation a running pod's. */
function healthyFlannel(init: { root?: string } = {}): { host: FakeHost; pods: Pod[] } {
  const { host, pods } = dirtyFlannelNode(init);
  installBins(host, FLANNEL_BINS);
  host.sandboxes = pods.map((p) => p.cid);
  return { host, pods };
}

function removeFile(host: FakeHost, nodePath: string) {
  host.fs.delete(host.realPath(nodePath));
}

function setAddr(host: FakeHost, ifname: string, ...cidrs: string[]) {
  host.addrs.delete(ifname);
  for (const c of cidrs) host.addAddr(ifname, c);
}

/** Calico's devices, routes and rules on a fake node; its config only when asked. */
function addCalico(host: FakeHost, o: { config?: boolean; tunl0?: 'active' | 'idle' } = {}) {
  const veths = ['cali1a2b3c4d5e6', 'calif00dfeed123'];
  host
    .addLink({ ifname: 'vxlan.calico', mtu: 1450, linkinfo: { info_kind: 'vxlan', info_data: { id: 4096 } } })
    .addAddr('vxlan.calico', '172.20.5.0/32');
  for (const [i, v] of veths.entries()) {
    host.addLink({ ifname: v, mtu: 1450, link_netnsid: 10 + i, linkinfo: { info_kind: 'veth' } });
    host.addRoute(4, { dst: `172.20.5.${i + 2}`, dev: v, scope: 'link' });
  }
  if (o.tunl0) {
    host.addLink({
      ifname: 'tunl0',
      mtu: 1480,
      linkinfo: { info_kind: 'ipip' },
      ...(o.tunl0 === 'idle' ? { flags: ['NOARP'], operstate: 'DOWN' } : {}),
    });
    if (o.tunl0 === 'active') host.addAddr('tunl0', '172.20.5.1/32');
  }
  host
    .addRoute(4, { type: 'blackhole', dst: '172.20.5.0/26', protocol: 'bird' })
    .addRoute(4, { dst: '172.20.6.0/26', gateway: '192.168.1.12', dev: 'eth0', protocol: 'bird' })
    .addRoute(4, { dst: '172.20.7.0/26', gateway: '172.20.7.0', dev: 'vxlan.calico', protocol: '80', flags: ['onlink'] });
  const site = host.iptablesSave('iptables-nft');
  host.setIptables(
    'iptables-nft',
    mergeSave(site, calicoRules(veths.map((veth, i) => ({ cid: `${i}`.repeat(64), ip: `172.20.5.${i + 2}`, veth, netns: '' })))),
  );
  host.addNftTable('ip', 'calico');
  host.ipsets.push('cali40all-ipam-pools', 'cali40masq-ipam-pools', 'site-allow');
  if (o.config)
    host
      .writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST)
      .writeFile('/etc/cni/net.d/calico-kubeconfig', 'apiVersion: v1\n', 0o600);
  return veths;
}

/** Two iptables-save dumps as one (chains and rules of the same table merged). */
function mergeSave(a: string, b: string): string {
  const tables = new Map<string, { chains: string[]; rules: string[] }>();
  for (const text of [a, b]) {
    let cur: { chains: string[]; rules: string[] } | undefined;
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) {
        cur = tables.get(line) ?? { chains: [], rules: [] };
        tables.set(line, cur);
      } else if (line.startsWith(':') && cur && !cur.chains.some((c) => c.split(' ')[0] === line.split(' ')[0])) cur.chains.push(line);
      else if (line.startsWith('-A ') && cur) cur.rules.push(line);
    }
  }
  return [...tables].flatMap(([t, x]) => [t, ...x.chains, ...x.rules, 'COMMIT']).join('\n') + '\n';
}

describe('a healthy node', () => {
  it('a consistent Flannel node has no findings, exits 0 and says so', async () => {
    const { host } = healthyFlannel();
    const r = await json(host);
    expect(r.code).toBe(0);
    expect(r.findings).toEqual([]);
    expect(r.report).toEqual({
      healthy: true,
      node: 'node-1',
      root: '/',
      cniInUse: ['flannel'],
      findings: [],
      recommended: null,
      notChecked: [NO_KUBE],
    });
    const t = await doctor(host);
    expect(t.code).toBe(0);
    expect(t.stdout).toBe(
      'cni-sweep doctor: node node-1: healthy, no findings\nCNI in use: flannel (/etc/cni/net.d/10-flannel.conflist)\n\n' +
        `not checked: ${NO_KUBE}\n`,
    );
    expect(t.stderr).toBe('');
  });

  it('a node without any CNI state has no findings', async () => {
    const r = await json(foreignNode());
    expect(r.code).toBe(0);
    expect(r.report?.healthy).toBe(true);
    expect(r.findings).toEqual([]);
  });

  it('runs every check in its fixed order', () => {
    expect(CHECKS.map((c) => c.name)).toEqual([
      'cni-configs',
      'plugin-binaries',
      'multus',
      'flannel-subnet',
      'bridge-pod-cidr',
      'leftover-interfaces',
      'ipam',
      'pod-network',
      'mtu',
      'hostgw-routes',
      'leftover-routes',
      'leftover-policy-routing',
      'leftover-firewall',
      'leftover-bpf',
      'iptables-split',
      'network-policy',
    ]);
  });
});

describe('CNI configs and plugins', () => {
  it("names every plugin binary missing from /opt/cni/bin, flannel's implied bridge and host-local included; the CNI gone means all of it goes, in one run", async () => {
    const { host } = healthyFlannel();
    host.fs.delete(host.realPath('/opt/cni/bin/flannel'));
    host.fs.delete(host.realPath('/opt/cni/bin/host-local'));
    const r = await json(host);
    expect(r.code).toBe(1);
    expect(r.report?.healthy).toBe(false);
    expect(r.findings).toEqual([
      {
        id: 'cni-plugin-missing',
        severity: 'error',
        title: '/etc/cni/net.d/10-flannel.conflist needs plugins missing from /opt/cni/bin: flannel, host-local',
        evidence: [
          '/opt/cni/bin/flannel: missing (plugin in /etc/cni/net.d/10-flannel.conflist)',
          '/opt/cni/bin/host-local: missing (IPAM flannel hands its delegate in /etc/cni/net.d/10-flannel.conflist)',
        ],
        why: expect.stringContaining('`failed to find plugin "flannel" in path [/opt/cni/bin]`'),
        fix: REMOVE_FLANNEL,
        fixArgv: ['cni-sweep', 'run', '--cni', 'flannel'],
      },
    ]);
  });

  it('a missing chained plugin (portmap) alone is not a removed CNI: no fix command, install the plugin', async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/opt/cni/bin/portmap');
    const f = one((await json(host)).findings, 'cni-plugin-missing');
    expect(f!.evidence).toEqual(['/opt/cni/bin/portmap: missing (plugin in /etc/cni/net.d/10-flannel.conflist)']);
    expect(f!.fix).toBeNull();
    expect(f!.why).toContain('Install the missing plugins');
  });

  it('echoes --root and --pod-cidr in the fix, and says when /opt/cni/bin itself is missing', async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'root-'));
    const { host } = healthyFlannel({ root });
    host.fs.delete(host.realPath('/opt/cni/bin'));
    for (const b of FLANNEL_BINS) removeFile(host, `/opt/cni/bin/${b}`);
    const f = one((await json(host, ['--root', root, '--pod-cidr', '10.244.0.0/16'])).findings, 'cni-plugin-missing');
    expect(f!.evidence[0]).toBe('/opt/cni/bin: no such directory');
    expect(f!.evidence).toHaveLength(5);
    expect(f!.fixArgv).toEqual(['cni-sweep', 'run', '--cni', 'flannel', '--root', root, '--pod-cidr', '10.244.0.0/16']);
  });

  it("more than one config: the runtime uses the first in lexical order; the other CNI's is stale, and every finding of it has the one command that removes it whole", async () => {
    const { host } = healthyFlannel();
    addCalico(host, { config: true });
    installBins(host, CALICO_BINS);
    const r = await json(host);
    expect(r.report?.cniInUse).toEqual(['calico']);
    expect(one(r.findings, 'cni-config-multiple')).toEqual({
      id: 'cni-config-multiple',
      severity: 'warning',
      title: '2 CNI configs in /etc/cni/net.d; the runtime uses only /etc/cni/net.d/10-calico.conflist',
      evidence: [
        'runtime uses: /etc/cni/net.d/10-calico.conflist (calico; first in lexical order)',
        'stale: /etc/cni/net.d/10-flannel.conflist (flannel)',
      ],
      why: expect.stringContaining('two CNIs fighting over one node'),
      fix: REMOVE_FLANNEL,
      fixArgv: expect.any(Array),
    });
    // Flannel is not in use any more: its devices, routes and rules are leftovers now (its pods still run, so no allocation is stale).
    expect(r.findings.map((f) => `${f.id} ${f.fix}`)).toEqual(
      ['cni-config-multiple', 'leftover-interfaces', 'leftover-routes', 'leftover-firewall'].map((id) => `${id} ${REMOVE_FLANNEL}`),
    );
  });

  it('a second config of the CNI in use is a duplicate: removed by path, not with `--cni` (which would take both)', async () => {
    const { host } = healthyFlannel();
    host.writeFile('/etc/cni/net.d/20-flannel.conflist', FLANNEL_CONFLIST);
    const f = one((await json(host)).findings, 'cni-config-multiple');
    expect(f!.evidence).toEqual([
      'runtime uses: /etc/cni/net.d/10-flannel.conflist (flannel; first in lexical order)',
      'stale: /etc/cni/net.d/20-flannel.conflist (flannel)',
    ]);
    expect(f!.fix).toBe('rm -f -- /etc/cni/net.d/20-flannel.conflist');
  });

  it("another tool's config (podman) beside the pod network is only a note: healthy, exit 0", async () => {
    const { host } = healthyFlannel();
    host.writeFile('/etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
    installBins(host, ['firewall', 'tuning']);
    const r = await json(host);
    expect(r.code).toBe(0);
    expect(r.findings).toEqual([
      expect.objectContaining({
        id: 'cni-config-multiple',
        severity: 'info',
        evidence: [
          'runtime uses: /etc/cni/net.d/10-flannel.conflist (flannel; first in lexical order)',
          'not used: /etc/cni/net.d/87-podman-bridge.conflist (unknown CNI: network podman, plugins bridge, portmap, firewall, tuning)',
        ],
        fix: null,
      }),
    ]);
    expect(r.findings[0]!.why).not.toMatch(/ignored by Kubernetes/);
    expect(r.findings[0]!.why).toContain('whatever it is');
    // podman's containers are not CRI pods: its allocations are not compared with crictl's list.
    expect(byId(r.findings, 'ipam-stale')).toEqual([]);
    const t = await doctor(host);
    expect(t.stdout.split('\n')[0]).toBe('cni-sweep doctor: node node-1: healthy (1 note)');
  });

  it("podman's config first (the pod network's gone or sorting after it) is a warning: the runtime gives new pods its network", async () => {
    const { host } = healthyFlannel();
    host.writeFile('/etc/cni/net.d/05-podman-bridge.conflist', PODMAN_CONFLIST);
    installBins(host, ['firewall', 'tuning']);
    const r = await json(host);
    expect(r.code).toBe(1);
    expect(one(r.findings, 'cni-config-not-pod-network')).toEqual(
      expect.objectContaining({
        severity: 'warning',
        title: 'the runtime uses /etc/cni/net.d/05-podman-bridge.conflist, which is no pod network cni-sweep knows',
        evidence: [
          'runtime uses: /etc/cni/net.d/05-podman-bridge.conflist (unknown CNI: network podman, plugins bridge, portmap, firewall, tuning; first in lexical order)',
          'not used: /etc/cni/net.d/10-flannel.conflist (flannel)',
        ],
        fix: null,
      }),
    );
    // Flannel is not called stale: the config to move is podman's, not the pod network's.
    expect(byId(r.findings, 'cni-config-multiple')).toEqual([]);
    host.fs.delete(host.realPath('/etc/cni/net.d/10-flannel.conflist'));
    expect(one((await json(host)).findings, 'cni-config-not-pod-network')!.evidence).toEqual([
      'runtime uses: /etc/cni/net.d/05-podman-bridge.conflist (unknown CNI: network podman, plugins bridge, portmap, firewall, tuning; first in lexical order)',
    ]);
  });

  it('a config that cannot be parsed is an error, and the rest is still diagnosed', async () => {
    const { host } = healthyFlannel();
    host.writeFile('/etc/cni/net.d/05-broken.conflist', '{"name": "x", "plugins": [');
    const r = await json(host);
    expect(r.code).toBe(1);
    const f = one(r.findings, 'cni-config-invalid');
    expect(f!.severity).toBe('error');
    expect(f!.evidence).toEqual([expect.stringMatching(/^\/etc\/cni\/net\.d\/05-broken\.conflist: not valid JSON/)]);
    expect(f!.fix).toBeNull();
    expect(r.findings).toHaveLength(1);
  });

  it('a non-first config missing its plugins is a warning: the runtime does not use it yet', async () => {
    const { host } = healthyFlannel();
    host.writeFile(
      '/etc/cni/net.d/99-extra.conf',
      JSON.stringify({ cniVersion: '0.4.0', name: 'extra', type: 'macvlan', master: 'eth0', ipam: { type: 'dhcp' } }),
    );
    const f = one((await json(host)).findings, 'cni-plugin-missing');
    expect(f!.severity).toBe('warning');
    expect(f!.evidence).toEqual([
      '/opt/cni/bin/macvlan: missing (plugin in /etc/cni/net.d/99-extra.conf)',
      '/opt/cni/bin/dhcp: missing (IPAM of macvlan in /etc/cni/net.d/99-extra.conf)',
    ]);
  });
});

describe('Flannel subnet.env and cni0', () => {
  it('a Flannel config without /run/flannel/subnet.env: loadFlannelSubnetEnv failed', async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/run/flannel/subnet.env');
    const r = await json(host);
    const f = one(r.findings, 'flannel-subnet-env-missing');
    expect(f).toEqual({
      id: 'flannel-subnet-env-missing',
      severity: 'error',
      title: "Flannel's CNI config is present but /run/flannel/subnet.env is not",
      evidence: [
        '/etc/cni/net.d/10-flannel.conflist: plugin "flannel" (network cbr0), the config the runtime uses',
        '/run/flannel/subnet.env: no such file',
      ],
      why: expect.stringContaining(
        '`plugin type="flannel" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory`',
      ),
      // Without subnet.env the pod network is unknown: the host-gw route to 10.244.2.0/24 is not recognised.
      fix: REMOVE_FLANNEL,
      fixArgv: expect.any(Array),
    });
    expect(f!.why).toContain('pass it (e.g. --pod-cidr 10.244.0.0/16)');
    const withCidr = one((await json(host, ['--pod-cidr', '10.244.0.0/16'])).findings, 'flannel-subnet-env-missing');
    expect(withCidr!.fix).toBe(`${REMOVE_FLANNEL} --pod-cidr 10.244.0.0/16`);
    expect(withCidr!.why).not.toContain('pass it');
  });

  it('after a reboot only files are left: the fix is config and state', async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/run/flannel/subnet.env');
    host.links = host.links.filter((l) => !['cni0', 'flannel.1'].includes(l.ifname) && l.master !== 'cni0');
    host.routes[4] = host.routes[4].filter((r) => !r.dst.startsWith('10.244.'));
    host.routes[6] = host.routes[6].filter((r) => !r.dst.startsWith('fd00:10:244'));
    host.iptables.clear();
    host.nftTables = [];
    expect(one((await json(host)).findings, 'flannel-subnet-env-missing')!.fix).toBe(REMOVE_FLANNEL);
  });

  it("cni0 holding another address than FLANNEL_SUBNET's gateway: already has an IP address different from", async () => {
    const { host } = healthyFlannel();
    setAddr(host, 'cni0', '10.244.7.1/24', 'fd00:10:244:1::1/64');
    const f = one((await json(host)).findings, 'flannel-subnet-mismatch');
    expect(f).toEqual({
      id: 'flannel-subnet-mismatch',
      severity: 'error',
      title: 'cni0 has 10.244.7.1/24, but /run/flannel/subnet.env says FLANNEL_SUBNET=10.244.1.1/24',
      evidence: ['cni0: 10.244.7.1/24', '/run/flannel/subnet.env: FLANNEL_SUBNET=10.244.1.1/24'],
      why: expect.stringContaining('`failed to set bridge addr: "cni0" already has an IP address different from 10.244.1.1/24`'),
      fix: 'cni-sweep run --cni flannel --only backup,interfaces',
      fixArgv: expect.any(Array),
    });
  });

  it('IPv6: only an overlapping different address conflicts, as the bridge plugin decides', async () => {
    const { host } = healthyFlannel();
    setAddr(host, 'cni0', '10.244.1.1/24', 'fd00:10:244:1::9/64', 'fd00:99::1/64');
    const f = one((await json(host)).findings, 'flannel-subnet-mismatch');
    expect(f!.evidence).toEqual(['cni0: fd00:10:244:1::9/64', '/run/flannel/subnet.env: FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64']);
  });

  it("cni0 outside the Node's spec.podCIDRs (read with the kubeconfig)", async () => {
    const { host } = healthyFlannel();
    host.kubeNodes.set('node-1', {
      kind: 'Node',
      metadata: { name: 'node-1' },
      spec: { podCIDR: '10.244.3.0/24', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'] },
    });
    const r = await json(host, ['--kubeconfig', '/etc/kubernetes/admin.conf']);
    expect(one(r.findings, 'bridge-outside-pod-cidr')).toEqual({
      id: 'bridge-outside-pod-cidr',
      severity: 'error',
      title: "cni0 holds 10.244.1.1/24, fd00:10:244:1::1/64, outside the node's pod CIDR 10.244.3.0/24, fd00:10:244:3::/64",
      evidence: ['cni0: 10.244.1.1/24, fd00:10:244:1::1/64', 'pod CIDR of Node node-1 (spec.podCIDRs): 10.244.3.0/24, fd00:10:244:3::/64'],
      why: expect.stringContaining('already has an IP address different from'),
      fix: 'cni-sweep run --cni flannel --only backup,interfaces --kubeconfig /etc/kubernetes/admin.conf',
      fixArgv: expect.any(Array),
    });
    expect(host.queries).toContainEqual(['kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf', 'get', 'node', 'node-1', '-o', 'json']);
  });

  it('--pod-cidr stands in for the Node when no kubeconfig is given; a bridge inside it is fine', async () => {
    const { host } = healthyFlannel();
    expect((await json(host, ['--pod-cidr', '10.244.0.0/16'])).findings).toEqual([]);
    const f = one((await json(host, ['--pod-cidr', '10.96.0.0/12'])).findings, 'bridge-outside-pod-cidr');
    expect(f!.evidence).toEqual(['cni0: 10.244.1.1/24', 'pod CIDR (--pod-cidr): 10.96.0.0/12']);
    expect(f!.fix).toBe('cni-sweep run --cni flannel --only backup,interfaces --pod-cidr 10.96.0.0/12');
  });

  it("a bridge is the CNI's whose phases own it (kube-router's kube-bridge, named by its config); one no profile owns goes by hand", async () => {
    const host = foreignNode();
    host.writeFile('/etc/cni/net.d/10-kuberouter.conflist', KUBE_ROUTER_CONFLIST);
    installBins(host, ['bridge', 'host-local']);
    host.addLink({ ifname: 'kube-bridge', linkinfo: { info_kind: 'bridge' } }).addAddr('kube-bridge', '10.245.1.1/24');
    const r = await json(host, ['--pod-cidr', '10.96.0.0/12']);
    expect(one(r.findings, 'bridge-outside-pod-cidr')!.fix).toBe(
      'cni-sweep run --cni kube-router --only backup,interfaces --pod-cidr 10.96.0.0/12',
    );
    // The same config naming a bridge of a site's (br-site) is no CNI's: the bridge plugin's config is not kube-router's then.
    host.writeFile('/etc/cni/net.d/10-kuberouter.conflist', KUBE_ROUTER_CONFLIST.replace('kube-bridge', 'br-site'));
    host.addLink({ ifname: 'br-site', linkinfo: { info_kind: 'bridge' } }).addAddr('br-site', '10.245.1.1/24');
    const f = one((await json(host, ['--pod-cidr', '10.96.0.0/12'])).findings, 'bridge-outside-pod-cidr');
    expect(f!.fixArgv).toEqual(['ip', 'link', 'delete', 'br-site']);
  });

  it('a Node that cannot be read is not a finding, but is said', async () => {
    const { host } = healthyFlannel();
    const r = await json(host, ['--kubeconfig', '/k']);
    expect(r.findings).toEqual([]);
    expect(r.report?.notChecked).toEqual([
      'Node node-1\'s pod CIDR: kubectl get node: Error from server (NotFound): nodes "node-1" not found',
    ]);
    expect(r.code).toBe(0);
  });
});

describe('leftovers of a CNI that is not in use', () => {
  it("k3s without its Flannel: the runtime reads /etc/cni/net.d, and k3s's stale conflist in its own dir is not in use", async () => {
    const host = foreignNode()
      .writeFile('/usr/local/bin/k3s', '', 0o755)
      .writeFile('/etc/rancher/k3s/config.yaml', 'flannel-backend: none\n')
      .writeFile('/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST)
      .writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    const r = await json(host);
    expect(r.report?.cniInUse).toEqual(['calico']);
  });

  it("a live agent's state is no leftover, whatever the configs say: flanneld running without its config", async () => {
    const { host } = dirtyFlannelNode();
    removeFile(host, '/etc/cni/net.d/10-flannel.conflist');
    host.addProcess(['/opt/bin/flanneld', '--ip-masq', '--kube-subnet-mgr']);
    const r = await json(host);
    expect(r.report?.cniInUse).toEqual(['flannel']);
    for (const id of ['leftover-interfaces', 'leftover-routes', 'leftover-firewall']) expect(byId(r.findings, id)).toEqual([]);
  });

  it('Flannel removed but its interfaces, routes, rules and allocations stay', async () => {
    const { host, pods } = dirtyFlannelNode();
    removeFile(host, '/etc/cni/net.d/10-flannel.conflist');
    const r = await json(host);
    expect(r.report?.cniInUse).toEqual([]);
    expect(one(r.findings, 'leftover-interfaces')).toEqual({
      id: 'leftover-interfaces',
      severity: 'warning',
      title: "flannel's interfaces remain while flannel is not in use: flannel.1, cni0, 2 pod veths",
      evidence: [
        'flannel.1 (vxlan): up, 10.244.1.0/32',
        `cni0 (bridge): up, 10.244.1.1/24 fd00:10:244:1::1/64, 2 pod veths: ${pods[0]!.veth} ${pods[1]!.veth}`,
      ],
      why: expect.stringContaining('`cni0 already has an IP address different from ...`'),
      fix: REMOVE_FLANNEL,
      fixArgv: expect.any(Array),
    });
    expect(one(r.findings, 'leftover-routes')).toMatchObject({
      evidence: ['route: 10.244.2.0/24 via 192.168.1.12 dev eth0', 'route: fd00:10:244:2::/64 via fd00:1::12 dev eth0 metric 1024'],
      fix: REMOVE_FLANNEL,
    });
    const fw = byId(r.findings, 'leftover-firewall');
    // portmap's chains are counted once, under the first CNI that would remove them.
    expect(fw).toHaveLength(1);
    expect(fw[0]!.evidence).toEqual([
      'iptables-nft nat: 8 chains (FLANNEL-POSTRTG, CNI-HOSTPORT-DNAT, CNI-HOSTPORT-SETMARK, CNI-HOSTPORT-MASQ, +4) holding 20 rules; 6 rules in PREROUTING, OUTPUT, POSTROUTING',
      'iptables-nft filter: 1 chain (FLANNEL-FWD) holding 2 rules; 1 rule in FORWARD',
      'ip6tables-nft nat: 1 chain (FLANNEL-POSTRTG) holding 3 rules; 1 rule in POSTROUTING',
      'ip6tables-nft filter: 1 chain (FLANNEL-FWD) holding 2 rules; 1 rule in FORWARD',
      'nftables: table ip flannel-ipv4',
      'nftables: table ip6 flannel-ipv6',
    ]);
    expect(fw[0]!.fix).toBe(REMOVE_FLANNEL);
    expect(fw[0]!.why).toContain('FLANNEL-POSTRTG');
    // Flannel's network is not in use: its whole IPAM state goes with the rest of it.
    expect(one(r.findings, 'ipam-stale')!.fix).toBe(REMOVE_FLANNEL);
  });

  it('--cni limits the leftovers diagnosed to those CNIs', async () => {
    const { host } = dirtyFlannelNode();
    removeFile(host, '/etc/cni/net.d/10-flannel.conflist');
    addCalico(host);
    const calicoOnly = await json(host, ['--cni', 'calico']);
    const leftovers = (r: Awaited<ReturnType<typeof json>>) => r.findings.filter((f) => f.id.startsWith('leftover')).map((f) => f.title);
    expect(leftovers(calicoOnly)).toHaveLength(3);
    expect(leftovers(calicoOnly).join('\n')).not.toMatch(/flannel|cni0/);
    expect(leftovers(await json(host))).toHaveLength(6);
    // Flannel's stale allocations are Flannel's state: not diagnosed with --cni calico, so the run removes Calico alone.
    expect(byId(calicoOnly.findings, 'ipam-stale')).toEqual([]);
    expect(calicoOnly.report?.recommended?.command).toBe('cni-sweep run --cni calico');
    expect((await json(host)).report?.recommended?.command).toBe('cni-sweep run --cni flannel,calico');
  });

  it('Calico removed: cali* veths, vxlan.calico, an active tunl0, proto bird/80 routes and blackholes, cali- chains and its nftables table', async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/etc/cni/net.d/10-flannel.conflist');
    host.writeFile('/etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST);
    const veths = addCalico(host, { tunl0: 'active' });
    const r = await json(host);
    expect(r.report?.cniInUse).toEqual(['flannel']);
    expect(one(r.findings, 'leftover-interfaces')).toMatchObject({
      title: `calico's interfaces remain while calico is not in use: vxlan.calico, tunl0, 2 pod veths`,
      evidence: ['vxlan.calico (vxlan): up, 172.20.5.0/32', 'tunl0 (ipip): up, 172.20.5.1/32', `2 pod veths: ${veths.join(' ')}`],
      fix: REMOVE_CALICO,
    });
    expect(one(r.findings, 'leftover-routes')).toMatchObject({
      title: '2 routes of calico remain while calico is not in use',
      // Routes through its devices go with them and are not listed.
      evidence: ['route: blackhole 172.20.5.0/26 proto bird', 'route: 172.20.6.0/26 via 192.168.1.12 dev eth0 proto bird'],
      fix: REMOVE_CALICO,
    });
    expect(one(r.findings, 'leftover-firewall')).toMatchObject({
      evidence: [
        'iptables-nft nat: 6 chains (cali-PREROUTING, cali-POSTROUTING, cali-OUTPUT, cali-nat-outgoing, +2) holding 5 rules; 3 rules in PREROUTING, OUTPUT, POSTROUTING',
        'iptables-nft filter: 10 chains (cali-INPUT, cali-FORWARD, cali-OUTPUT, cali-wl-to-host, +6) holding 13 rules; 4 rules in INPUT, FORWARD, OUTPUT',
        'iptables-nft raw: 3 chains (cali-PREROUTING, cali-OUTPUT, cali-from-host-endpoint) holding 4 rules; 2 rules in PREROUTING, OUTPUT',
        'iptables-nft mangle: 2 chains (cali-PREROUTING, cali-POSTROUTING) holding 1 rule; 2 rules in PREROUTING, POSTROUTING',
        'nftables: table ip calico',
        '2 ipsets: cali40all-ipam-pools, cali40masq-ipam-pools',
      ],
      fix: REMOVE_CALICO,
    });
  });

  it('a tunl0 taken out of service (down, no address) is not a leftover: only its module can remove it', async () => {
    const { host } = healthyFlannel();
    host.addLink({ ifname: 'tunl0', mtu: 1480, flags: ['NOARP'], operstate: 'DOWN', linkinfo: { info_kind: 'ipip' } });
    expect((await json(host)).findings).toEqual([]);
  });

  it("Canal in use: Flannel's and Calico's devices are its own, not leftovers", async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/etc/cni/net.d/10-flannel.conflist');
    addCalico(host);
    host.writeFile('/etc/cni/net.d/10-canal.conflist', CANAL_CONFLIST).writeFile('/etc/cni/net.d/calico-kubeconfig', 'x');
    installBins(host, ['calico', 'host-local', 'portmap', 'bandwidth']);
    const r = await json(host);
    expect(r.report?.cniInUse.sort()).toEqual(['calico', 'canal', 'flannel']);
    expect(r.findings.filter((f) => f.id.startsWith('leftover'))).toEqual([]);
  });
});

describe('policy routing and BPF state of a CNI not in use', () => {
  const REMOVE_CILIUM = 'cni-sweep run --cni cilium';
  /** Cilium's proxy rules (IPv4 and IPv6) and table 2004 on a Flannel node; a site's own rule and table at the same priority. */
  function ciliumRules(host: FakeHost) {
    addRule(host, 4, { priority: 9, src: 'all', fwmark: '0x200', fwmask: '0xf00', table: '2004' });
    addRule(host, 4, { priority: 10, src: 'all', fwmark: '0xa00', fwmask: '0xf00', table: '2005' });
    addRule(host, 6, { priority: 9, src: 'all', fwmark: '0x200', fwmask: '0xf00', table: '2004' });
    addRule(host, 4, { priority: 9, src: '10.9.0.0', srclen: 16, table: '100' });
    addTableRoute(host, 4, 2004, { type: 'local', dst: 'default', dev: 'lo', scope: 'host' });
    addTableRoute(host, 4, 100, { dst: 'default', gateway: '192.168.1.254', dev: 'eth0' });
  }

  it("Cilium's ip rules and table 2004 after Cilium left: each rule and route, the site's rule and table untouched, the one run", async () => {
    const { host } = healthyFlannel();
    ciliumRules(host);
    const r = await json(host);
    expect(r.findings.map((f) => f.id)).toEqual(['leftover-policy-routing']);
    expect(one(r.findings, 'leftover-policy-routing')).toEqual({
      id: 'leftover-policy-routing',
      severity: 'warning',
      title: "cilium's policy routing remains while cilium is not in use: 3 ip rules, 1 route in its tables",
      evidence: [
        'ip -4 rule: priority 9 fwmark 0x200/0xf00 table 2004',
        'ip -4 rule: priority 10 fwmark 0xa00/0xf00 table 2005',
        'ip -4 route: local default dev lo table 2004',
        'ip -6 rule: priority 9 fwmark 0x200/0xf00 table 2004',
      ],
      why:
        "They are looked up before the main table: packets carrying Cilium's proxy marks (0x200 in 0xf00) still go to table 2004, " +
        'which delivers them to this host where no proxy listens any more, so traffic another tool marks with those bits is lost. ' +
        "cni-sweep removes each rule by its exact selector and flushes only the tables wholly cilium's.",
      fix: REMOVE_CILIUM,
      fixArgv: ['cni-sweep', 'run', '--cni', 'cilium'],
    });
    expect(r.report?.recommended).toEqual({
      command: REMOVE_CILIUM,
      argv: ['cni-sweep', 'run', '--cni', 'cilium'],
      fixes: ['leftover-policy-routing'],
    });
  });

  it('not while its agent runs (a run would refuse it), nor with --cni naming other CNIs', async () => {
    const { host } = healthyFlannel();
    ciliumRules(host);
    expect(byId((await json(host, ['--cni', 'flannel,calico'])).findings, 'leftover-policy-routing')).toEqual([]);
    host.addProcess(['cilium-agent', '--config-dir=/tmp/cilium/config-map']);
    expect((await json(host)).findings).toEqual([]);
  });

  it("kube-router's rule to table 77, its routes there and its rt_tables lines; the site's own rt_tables lines stay", async () => {
    const host = foreignNode();
    host.writeFile(
      '/etc/iproute2/rt_tables',
      '255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n100 site\n77 kube-router\n78 kube-router-dsr\n',
    );
    addRule(host, 4, { priority: 32765, src: '10.245.1.0', srclen: 24, table: '77' });
    addTableRoute(host, 4, 77, { dst: '10.245.2.0/24', dev: 'eth0', scope: 'link' });
    const f = one((await json(host)).findings, 'leftover-policy-routing')!;
    expect(f.title).toBe(
      "kube-router's policy routing remains while kube-router is not in use: 1 ip rule, 1 route in its tables, 2 rt_tables entries",
    );
    expect(f.evidence).toEqual([
      'ip -4 rule: priority 32765 from 10.245.1.0/24 table 77',
      'ip -4 route: 10.245.2.0/24 dev eth0 table 77',
      'rt_tables entry: /etc/iproute2/rt_tables: 77 kube-router',
      'rt_tables entry: /etc/iproute2/rt_tables: 78 kube-router-dsr',
    ]);
    expect(f.why).toMatch(/^They are looked up before the main table: traffic from kube-router's pod CIDR still goes to table 77/);
    expect(f.fix).toBe('cni-sweep run --cni kube-router');
  });

  it("Cilium's programs on the uplink (tc and XDP) and its pins; another program and a site's filter are not its", async () => {
    const { host } = healthyFlannel();
    host.addLink({ ifname: 'eth1' });
    addQdisc(host, 'eth0', 'clsact');
    addTcFilter(host, 'eth0', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
    addTcFilter(host, 'eth0', { dir: 'egress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_to_netdev' });
    attachXdp(host, 'eth0', 1, 'cil_xdp_entry');
    addQdisc(host, 'eth1', 'clsact');
    addTcFilter(host, 'eth1', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'site_shaper' });
    mountBpffs(host, '/sys/fs/bpf');
    host.writeFile('/sys/fs/bpf/tc/globals/cilium_calls_netdev_2', '', 0o600).writeFile('/sys/fs/bpf/site/counters', '', 0o600);
    const r = await json(host);
    expect(r.findings.map((f) => f.id)).toEqual(['leftover-bpf']);
    expect(one(r.findings, 'leftover-bpf')).toMatchObject({
      title: "cilium's BPF state remains while cilium is not in use: 3 attached programs, 1 bpffs pin",
      evidence: [
        'BPF attachment: tc filter eth0 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'BPF attachment: tc filter eth0 egress pref 1 handle 0x1 (cil_to_netdev)',
        'BPF attachment: clsact qdisc of eth0',
        'BPF pin: /sys/fs/bpf/tc/globals/cilium_calls_netdev_2',
        'BPF attachment: XDP eth0 driver (cil_xdp_entry)',
      ],
      fix: REMOVE_CILIUM,
    });
    expect(one(r.findings, 'leftover-bpf')!.why).toMatch(/^Cilium's programs stay attached to host devices .* cannot be backed up\.$/);
    expect(r.report?.recommended?.fixes).toEqual(['leftover-bpf']);
  });
});

describe('IPAM', () => {
  it('allocations whose container is not among the running sandboxes, with the exact files to remove for a CNI in use', async () => {
    const { host, pods } = healthyFlannel();
    host.sandboxes = [pods[1]!.cid];
    const f = one((await json(host)).findings, 'ipam-stale');
    expect(f).toEqual({
      id: 'ipam-stale',
      severity: 'warning',
      title: '1 IP allocation in /var/lib/cni/networks/cbr0 belongs to no running pod',
      evidence: [
        'running pod sandboxes (crictl pods -q): 1',
        `/var/lib/cni/networks/cbr0/10.244.1.2: container ${pods[0]!.cid.slice(0, 13)} (eth0)`,
      ],
      why: expect.stringContaining('`failed to allocate for range 0: no IP addresses available in range set`'),
      // Flannel is in use: only the stale files go, into an archive (appended to, never overwritten), not rm -f.
      fix: 'tar -C /var/lib/cni/networks/cbr0 --remove-files -rf /var/lib/cni/stale-ipam-cbr0.tar -- 10.244.1.2',
      fixArgv: ['tar', '-C', '/var/lib/cni/networks/cbr0', '--remove-files', '-rf', '/var/lib/cni/stale-ipam-cbr0.tar', '--', '10.244.1.2'],
    });
  });

  const refused = {
    code: 1,
    stderr: 'validate service connection: connection error: dial unix /run/containerd/containerd.sock: connect: connection refused\n',
  };
  const RUNTIMES_DOWN =
    'no container runtime is running (cri-docker.service inactive, docker.service inactive, containerd.service inactive, crio.service inactive, ' +
    'k3s.service inactive, k3s-agent.service inactive, rke2-server.service inactive, rke2-agent.service inactive): no allocation can belong to a running pod';

  it('a stopped runtime (crictl cannot reach it, no runtime unit active) runs no sandbox: every allocation is stale', async () => {
    const { host } = healthyFlannel();
    host.units.set('containerd.service', 'inactive');
    host.failQuery((a) => a[0] === 'crictl', refused);
    const f = one((await json(host)).findings, 'ipam-stale');
    expect(f!.evidence[0]).toBe(RUNTIMES_DOWN);
    expect(f!.evidence).toHaveLength(3);
  });

  it('crictl answering wins over systemctl: k3s runs containerd inside k3s.service', async () => {
    const { host } = healthyFlannel();
    host.units.set('containerd.service', 'inactive');
    expect((await json(host)).findings).toEqual([]);
    // Distribution detection asks systemctl about its units (kubelet.service first); the runtime check never falls back to it.
    expect(host.queries.filter((q) => q[0] === 'systemctl' && q[2] !== 'kubelet.service' && q.includes('containerd.service'))).toEqual([]);
  });

  it('crictl failing as root with a runtime unit active counts as no sandbox; without root, or without crictl, it is not checked', async () => {
    const { host } = healthyFlannel();
    host.failQuery((a) => a[0] === 'crictl', refused);
    expect(one((await json(host)).findings, 'ipam-stale')!.evidence[0]).toBe(
      `crictl pods -q failed: ${refused.stderr.trim()}: no allocation can belong to a running pod`,
    );

    const { host: user } = healthyFlannel();
    user.isRootUser = false;
    user.failQuery((a) => a[0] === 'crictl', { code: 1, stderr: 'permission denied\n' });
    const u = await json(user);
    expect(u.findings).toEqual([]);
    expect(u.report?.notChecked).toEqual(['IPAM allocations against running pods: crictl pods -q failed: permission denied', NO_KUBE]);

    const { host: h2 } = healthyFlannel();
    h2.removeBinary('crictl');
    const r = await json(h2);
    expect(r.findings).toEqual([]);
    expect(r.report?.notChecked).toEqual(['IPAM allocations against running pods: crictl is not installed', NO_KUBE]);
  });

  it('warns at 90% of the range (FLANNEL_SUBNET: 253 addresses) and errs when it is used up', async () => {
    const { host } = healthyFlannel();
    // 2 pods + 226 more = 228 of 10.244.1.1-10.244.1.254 without the gateway (.1): 90.1%.
    for (let i = 4; i < 230; i++) host.writeFile(`/var/lib/cni/networks/cbr0/10.244.1.${i}`, `${'a'.repeat(63)}${i % 10}\r\neth0`, 0o600);
    let r = await json(host);
    expect(one(r.findings, 'ipam-exhaustion')).toEqual({
      id: 'ipam-exhaustion',
      severity: 'warning',
      title: '/var/lib/cni/networks/cbr0 is 90.1% full: 228 of 253 addresses in 10.244.1.1-10.244.1.254',
      evidence: [
        '/var/lib/cni/networks/cbr0: 228 of 253 addresses allocated in 10.244.1.1-10.244.1.254 (/run/flannel/subnet.env FLANNEL_SUBNET=10.244.1.1/24)',
        '226 of them belong to no running pod',
      ],
      why: expect.stringContaining('`failed to allocate for range 0: no IP addresses available in range set: 10.244.1.1-10.244.1.254`'),
      // The same stale files as ipam-stale, in the directory's (lexical) order.
      fix: expect.stringMatching(
        /^tar -C \/var\/lib\/cni\/networks\/cbr0 --remove-files -rf \/var\/lib\/cni\/stale-ipam-cbr0.tar -- 10\.244\.1\.10 10\.244\.1\.100 /,
      ),
      fixArgv: expect.any(Array),
    });
    expect(one(r.findings, 'ipam-stale')!.evidence).toHaveLength(227);
    for (let i = 230; i < 255; i++) host.writeFile(`/var/lib/cni/networks/cbr0/10.244.1.${i}`, `${'b'.repeat(64)}\r\neth0`, 0o600);
    r = await json(host);
    expect(one(r.findings, 'ipam-exhaustion')).toMatchObject({
      severity: 'error',
      title: '/var/lib/cni/networks/cbr0 is 100% full: 253 of 253 addresses in 10.244.1.1-10.244.1.254',
    });
  });

  it('a full range of running pods has no fix command: the subnet is too small', async () => {
    const { host } = healthyFlannel();
    for (let i = 4; i < 255; i++) {
      const cid = `${i}`.padStart(64, 'c');
      host.writeFile(`/var/lib/cni/networks/cbr0/10.244.1.${i}`, `${cid}\r\neth0`, 0o600);
      host.sandboxes.push(cid);
    }
    const f = one((await json(host)).findings, 'ipam-exhaustion');
    expect(f!.evidence[1]).toBe('0 of them belong to no running pod');
    expect(f!.fix).toBeNull();
    expect(f!.why).toContain('too small');
  });

  it("takes the range from the conflist (ipam.ranges with rangeStart/rangeEnd) for the runtime's bridge network", async () => {
    const h = foreignNode();
    h.writeFile(
      '/etc/cni/net.d/10-bridge.conflist',
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'mynet',
        plugins: [
          {
            type: 'bridge',
            bridge: 'br-pods',
            ipam: { type: 'host-local', ranges: [[{ subnet: '10.22.0.0/24', rangeStart: '10.22.0.10', rangeEnd: '10.22.0.19' }]] },
          },
        ],
      }),
    );
    installBins(h, ['bridge', 'host-local']);
    for (let i = 10; i < 19; i++) h.writeFile(`/var/lib/cni/networks/mynet/10.22.0.${i}`, `${`${i}`.padStart(64, 'd')}\r\neth0`, 0o600);
    h.sandboxes = Array.from({ length: 9 }, (_, k) => `${k + 10}`.padStart(64, 'd'));
    const f = one((await json(h)).findings, 'ipam-exhaustion');
    expect(f!.evidence[0]).toBe(
      '/var/lib/cni/networks/mynet: 9 of 10 addresses allocated in 10.22.0.10-10.22.0.19 (/etc/cni/net.d/10-bridge.conflist ipam.ranges)',
    );
  });

  it("--cni: only the named CNIs' allocations are diagnosed; those of a network no profile claims only without --cni", async () => {
    const { host, pods } = healthyFlannel();
    host.sandboxes = [pods[1]!.cid];
    const stale = `/var/lib/cni/networks/cbr0/10.244.1.2: container ${pods[0]!.cid.slice(0, 13)} (eth0)`;
    expect(byId((await json(host, ['--cni', 'calico'])).findings, 'ipam-stale')).toEqual([]);
    expect(one((await json(host, ['--cni', 'flannel'])).findings, 'ipam-stale')!.evidence).toEqual([
      'running pod sandboxes (crictl pods -q): 1',
      stale,
    ]);
    // The runtime's own bridge network, which no profile claims: a site's, not Flannel's.
    const h = foreignNode();
    h.writeFile(
      '/etc/cni/net.d/10-bridge.conflist',
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'sitenet',
        plugins: [{ type: 'bridge', bridge: 'br-pods', ipam: { type: 'host-local', subnet: '10.22.0.0/24' } }],
      }),
    );
    installBins(h, ['bridge', 'host-local']);
    h.writeFile('/var/lib/cni/networks/sitenet/10.22.0.2', `${'e'.repeat(64)}\r\neth0`, 0o600);
    expect(byId((await json(h, ['--cni', 'flannel'])).findings, 'ipam-stale')).toEqual([]);
    expect(one((await json(h)).findings, 'ipam-stale')!.evidence).toEqual([
      'running pod sandboxes (crictl pods -q): 0',
      `/var/lib/cni/networks/sitenet/10.22.0.2: container ${'e'.repeat(13)} (eth0)`,
    ]);
  });
});

describe('pods without a network', () => {
  it('a READY sandbox whose namespace holds only lo, and one on the network of a CNI no longer in use; host-network and healthy pods are fine', async () => {
    const { host, pods } = dirtyFlannelNode();
    const lo = [{ ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'] }];
    const withEth = (peer: string) => [
      ...lo,
      { ifindex: 2, ifname: 'eth0', link_index: host.link(peer)!.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
    ];
    const ns0 = host.realPath(`/run/netns/${pods[0]!.netns}`);
    const ns1 = host.realPath(`/run/netns/${pods[1]!.netns}`);
    host.netnsLinks.set(ns0, withEth(pods[0]!.veth));
    host.netnsLinks.set(ns1, lo);
    host.sandboxes = ['aaaa1111bbbb2222', 'cccc3333dddd4444', 'hostnet'];
    host.pods.set('aaaa1111bbbb2222', { name: 'web-1', namespace: 'default', ip: pods[0]!.ip, netns: ns0 });
    host.pods.set('cccc3333dddd4444', { name: 'dns-1', namespace: 'kube-system', ip: pods[1]!.ip, netns: ns1 });
    host.pods.set('hostnet', { name: 'kube-proxy-x', namespace: 'kube-system', hostNetwork: true });
    const healthy = byId((await json(host)).findings, 'pod-without-network');
    expect(healthy).toEqual([
      {
        id: 'pod-without-network',
        severity: 'error',
        title: '1 READY pod has no network interface but lo',
        evidence: [`pod kube-system/dns-1 (sandbox cccc3333dddd4, ${pods[1]!.ip}): ${ns1} holds only lo`],
        why: expect.stringMatching(/^kubelet sees a READY sandbox and never recreates it/),
        fix: 'crictl stopp cccc3333dddd4444',
        fixArgv: ['crictl', 'stopp', 'cccc3333dddd4444'],
      },
    ]);
    // Flannel's config and interfaces removed by hand, subnet.env left; web-1's namespace cannot be looked
    // into: its address says it is on a network that is gone.
    host.fs.delete(host.realPath('/etc/cni/net.d/10-flannel.conflist'));
    host.links = host.links.filter((l) => l.ifname !== 'cni0' && l.ifname !== 'flannel.1' && l.master !== 'cni0');
    host.netnsLinks.delete(ns0);
    const r = await json(host);
    expect(byId(r.findings, 'pod-on-removed-network')).toEqual([
      expect.objectContaining({
        title: '1 READY pod is on the network of a CNI that is not in use',
        evidence: [
          `pod default/web-1 (sandbox aaaa1111bbbb2, ${pods[0]!.ip}): in flannel's network 10.244.1.0/24, and no config of flannel is in use`,
        ],
        fixArgv: ['crictl', 'stopp', 'aaaa1111bbbb2222'],
      }),
    ]);
  });

  it('a pod of a CNI whose bridge is still there (a migration in progress) is fine, and so is everything when crictl cannot tell', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.sandboxes = ['aaaa1111bbbb2222'];
    host.pods.set('aaaa1111bbbb2222', { name: 'web-1', namespace: 'default', ip: pods[0]!.ip });
    host.fs.delete(host.realPath('/etc/cni/net.d/10-flannel.conflist'));
    expect((await json(host)).findings.filter((f) => f.id.startsWith('pod-'))).toEqual([]);
  });

  it('nothing to say when crictl cannot tell', async () => {
    const { host } = dirtyFlannelNode();
    host.removeBinary('crictl');
    const r = await json(host);
    expect(r.findings.filter((f) => f.id.startsWith('pod-'))).toEqual([]);
  });
});

describe('MTU', () => {
  it('an overlay above the uplink MTU minus its encapsulation: the silent large-packet drop', async () => {
    const { host } = healthyFlannel();
    host.link('flannel.1')!.mtu = 1500;
    const r = await json(host);
    expect(one(r.findings, 'mtu-overlay')).toEqual({
      id: 'mtu-overlay',
      severity: 'error',
      title: "flannel.1's MTU 1500 is above what eth0 can carry after VXLAN (1450)",
      evidence: ['flannel.1: mtu 1500 (VXLAN adds 50 bytes)', "eth0: mtu 1500 (uplink: the default route's device)"],
      why: expect.stringContaining('dropped on eth0 without an error'),
      fix: 'ip link set dev flannel.1 mtu 1450',
      fixArgv: ['ip', 'link', 'set', 'dev', 'flannel.1', 'mtu', '1450'],
    });
  });

  it('WireGuard takes 60 bytes, host-gw none: pod veths are then held to the uplink', async () => {
    const { host } = healthyFlannel();
    host.link('flannel.1')!.ifname = 'flannel-wg';
    host.link('flannel-wg')!.mtu = 1450;
    expect(one((await json(host)).findings, 'mtu-overlay')!.title).toBe(
      "flannel-wg's MTU 1450 is above what eth0 can carry after WireGuard (1440)",
    );

    const { host: gw } = healthyFlannel();
    gw.links = gw.links.filter((l) => l.ifname !== 'flannel.1');
    gw.link('eth0')!.mtu = 1400;
    const r = await json(gw);
    expect(one(r.findings, 'mtu-pod-veth')!.evidence.slice(-1)).toEqual(['eth0: mtu 1400 (uplink; no overlay device)']);
    expect(one(r.findings, 'mtu-flannel-env')!.evidence).toEqual(['/run/flannel/subnet.env: FLANNEL_MTU=1450', 'eth0: mtu 1400']);
  });

  it('pod veths above the overlay MTU: the fix drains the node (PodDisruptionBudgets hold), then uncordons it; no mass pod deletion', async () => {
    const { host, pods } = healthyFlannel();
    host.link(pods[0]!.veth)!.mtu = 1500;
    const f = one((await json(host, ['--kubeconfig', '/k'])).findings, 'mtu-pod-veth');
    expect(f).toMatchObject({
      severity: 'warning',
      title: "1 pod veth has an MTU above flannel.1's (1450)",
      evidence: [`${pods[0]!.veth} on cni0: mtu 1500`, 'flannel.1: mtu 1450 (the overlay pod traffic leaves through)'],
      fix: 'kubectl --kubeconfig /k drain node-1 --ignore-daemonsets --delete-emptydir-data',
      fixArgv: ['kubectl', '--kubeconfig', '/k', 'drain', 'node-1', '--ignore-daemonsets', '--delete-emptydir-data'],
      then: 'kubectl --kubeconfig /k uncordon node-1',
    });
    const t = await doctor(host, ['--kubeconfig', '/k']);
    expect(t.stdout).toContain(
      '  fix:      kubectl --kubeconfig /k drain node-1 --ignore-daemonsets --delete-emptydir-data\n  then:     kubectl --kubeconfig /k uncordon node-1\n',
    );
    expect(t.stdout).not.toMatch(/delete pods|recommended:/);
  });

  it('a healthy dual-stack VXLAN node (flannel-v6.1 at 1430 over a 1500 uplink) has no MTU finding', async () => {
    const { host } = healthyFlannel();
    host.addLink({ ifname: 'flannel-v6.1', mtu: 1430, linkinfo: { info_kind: 'vxlan', info_data: { id: 1 } } });
    const r = await json(host);
    expect(r.findings.filter((f) => f.id.startsWith('mtu-'))).toEqual([]);
    // Above 1430 it is still an overlay the uplink cannot carry.
    host.link('flannel-v6.1')!.mtu = 1450;
    expect(one((await json(host)).findings, 'mtu-overlay')!.title).toBe(
      "flannel-v6.1's MTU 1450 is above what eth0 can carry after VXLAN over IPv6 (1430)",
    );
  });

  it("FLANNEL_MTU above the overlay's: every new pod gets it", async () => {
    const { host } = healthyFlannel();
    host.writeFile(
      '/run/flannel/subnet.env',
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n',
    );
    setAddr(host, 'cni0', '10.244.1.1/24');
    const f = one((await json(host)).findings, 'mtu-flannel-env');
    expect(f).toMatchObject({
      title: "FLANNEL_MTU=1500 in /run/flannel/subnet.env is above flannel.1's MTU 1450",
      evidence: ['/run/flannel/subnet.env: FLANNEL_MTU=1500', 'flannel.1: mtu 1450'],
      fix: 'kubectl -n kube-flannel delete pod -l app=flannel --field-selector spec.nodeName=node-1',
    });
  });

  it('Calico in use: vxlan.calico and an addressed tunl0 are held to the uplink, cali veths to the overlay', async () => {
    const h = foreignNode();
    addCalico(h, { config: true, tunl0: 'active' });
    installBins(h, CALICO_BINS);
    h.link('vxlan.calico')!.mtu = 1480;
    h.link('tunl0')!.mtu = 1500;
    h.link('calif00dfeed123')!.mtu = 1500;
    const r = await json(h);
    expect(byId(r.findings, 'mtu-overlay').map((f) => f.title)).toEqual([
      "vxlan.calico's MTU 1480 is above what eth0 can carry after VXLAN (1450)",
      "tunl0's MTU 1500 is above what eth0 can carry after IPIP (1480)",
    ]);
    expect(one(r.findings, 'mtu-pod-veth')!.evidence).toEqual([
      'calif00dfeed123: mtu 1500',
      'vxlan.calico: mtu 1480 (the overlay pod traffic leaves through)',
    ]);
  });

  it('a leftover overlay is reported as a leftover, not as an MTU problem', async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/etc/cni/net.d/10-flannel.conflist');
    host.link('flannel.1')!.mtu = 9000;
    expect(byId((await json(host)).findings, 'mtu-overlay')).toEqual([]);
  });
});

describe('routes', () => {
  it('a host-gw route via a gateway no connected route on its device covers', async () => {
    const { host } = healthyFlannel();
    host.addRoute(4, { dst: '10.244.3.0/24', gateway: '10.9.9.12', dev: 'eth0', flags: ['onlink'] });
    const r = await json(host);
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
  });

  it('vxlan routes through flannel.1 and host-gw routes on the segment are fine', async () => {
    const { host } = healthyFlannel();
    host.addRoute(4, { dst: '10.244.4.0/24', gateway: '192.168.1.14', dev: 'eth0' });
    expect((await json(host)).findings).toEqual([]);
  });
});

describe('firewall backends and NetworkPolicy', () => {
  it('KUBE-* chains in both iptables-nft and iptables-legacy', async () => {
    const { host } = healthyFlannel();
    host.setIptables(
      'iptables-legacy',
      '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n',
    );
    const r = await json(host);
    expect(r.findings).toEqual([
      {
        id: 'iptables-split-backends',
        severity: 'warning',
        title: 'iptables rules of kube-proxy or a CNI are split across iptables-nft and iptables-legacy',
        evidence: [
          'iptables-nft: 13 chains (KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ, FLANNEL-POSTRTG, CNI-HOSTPORT-DNAT, +8), 39 rules in or to them',
          'iptables-legacy: 2 chains (KUBE-SERVICES, KUBE-MARK-MASQ), 1 rule in or to them',
        ],
        why: expect.stringContaining('iptables-legacy holds fewer rules and is probably the stale side; make every component use nft'),
        fix: null,
        fixArgv: null,
      },
    ]);
  });

  it('NetworkPolicy objects while the pods use Flannel alone; not with Canal', async () => {
    const { host } = healthyFlannel();
    host.kubeNodes.set('node-1', { spec: { podCIDR: '10.244.1.0/24' } });
    host.networkPolicies = [
      { namespace: 'prod', name: 'deny-all' },
      { namespace: 'prod', name: 'allow-web' },
    ];
    const r = await json(host, ['--kubeconfig', '/k']);
    expect(r.findings).toEqual([
      {
        id: 'networkpolicy-unenforced',
        severity: 'warning',
        title: "2 NetworkPolicy objects exist, but this node's pods use Flannel, which does not enforce them",
        evidence: [
          'kubectl get networkpolicies -A: prod/deny-all, prod/allow-web',
          'runtime uses: /etc/cni/net.d/10-flannel.conflist (flannel)',
        ],
        why: expect.stringContaining('Install Canal'),
        fix: null,
        fixArgv: null,
      },
    ]);
    // Without a kubeconfig the API is never asked.
    const { host: h2 } = healthyFlannel();
    h2.networkPolicies = host.networkPolicies;
    expect((await json(h2)).findings).toEqual([]);
    expect(h2.queries.some((q) => q[0] === 'kubectl')).toBe(false);
  });

  it('$KUBECONFIG counts as given', async () => {
    const { host } = healthyFlannel();
    host.networkPolicies = [{ namespace: 'a', name: 'b' }];
    const r = await doctor(host, ['--json'], { env: { KUBECONFIG: '/env/kubeconfig' } });
    expect(one(r.findings, 'networkpolicy-unenforced')!.evidence[0]).toBe('kubectl get networkpolicies -A: a/b');
  });
});

describe('the command line', () => {
  it('prints findings as text: severity, id, title, evidence, why, fix; --verbose shows every evidence line', async () => {
    const { host } = healthyFlannel();
    host.link('flannel.1')!.mtu = 1500;
    removeFile(host, '/opt/cni/bin/portmap');
    const r = await doctor(host);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 8)).toEqual([
      'cni-sweep doctor: node node-1: 2 findings (2 errors)',
      'CNI in use: flannel (/etc/cni/net.d/10-flannel.conflist)',
      '',
      'error   cni-plugin-missing: /etc/cni/net.d/10-flannel.conflist needs plugins missing from /opt/cni/bin: portmap',
      '  evidence: /opt/cni/bin/portmap: missing (plugin in /etc/cni/net.d/10-flannel.conflist)',
      '  why:      Every pod sandbox on this node fails (FailedCreatePodSandBox): `failed to find plugin "portmap" in path [/opt/cni/bin]`. Install the missing plugins (the containernetworking plugins: the kubernetes-cni package, or the CNI\'s installer) or remove the config.',
      '  fix:      no single command: see why',
      '',
    ]);
    expect(lines.slice(8, 11)).toEqual([
      "error   mtu-overlay: flannel.1's MTU 1500 is above what eth0 can carry after VXLAN (1450)",
      '  evidence: flannel.1: mtu 1500 (VXLAN adds 50 bytes)',
      "            eth0: mtu 1500 (uplink: the default route's device)",
    ]);
    expect(lines[12]).toBe('  fix:      ip link set dev flannel.1 mtu 1450');
    expect(r.stdout).not.toContain('\x1b[');

    const many = healthyFlannel().host;
    many.sandboxes = [];
    for (let i = 10; i < 30; i++) many.writeFile(`/var/lib/cni/networks/cbr0/10.244.1.${i}`, `${'e'.repeat(64)}\r\neth0`);
    const short = await doctor(many);
    expect(short.stdout).toContain('           ... and 13 more (--verbose or --json shows all)\n');
    const long = await doctor(many, ['--verbose']);
    expect(long.stdout).not.toContain('more (--verbose');
    expect(long.stdout).toContain('/var/lib/cni/networks/cbr0/10.244.1.29: container eeeeeeeeeeeee (eth0)');
  });

  it('colours severities only on a terminal, and not with --no-color or NO_COLOR', async () => {
    const { host } = healthyFlannel();
    removeFile(host, '/opt/cni/bin/portmap');
    expect((await doctor(host, [], { stdoutTty: true })).stdout).toContain('\x1b[31merror  \x1b[0m');
    expect((await doctor(host, ['--no-color'], { stdoutTty: true })).stdout).not.toContain('\x1b[');
    expect((await doctor(host, [], { stdoutTty: true, env: { NO_COLOR: '1' } })).stdout).not.toContain('\x1b[');
  });

  it('bad usage exits 2 with one line on stderr', async () => {
    const { host } = healthyFlannel();
    for (const [args, msg] of [
      [['--pod-cidr', '10.244.0.0'], 'cni-sweep: error: --pod-cidr: not a CIDR: 10.244.0.0\n'],
      [
        ['--cni', 'flanel'],
        'cni-sweep: error: unknown CNI "flanel" (did you mean flannel?)\n  hint: known CNIs: flannel, calico, canal, kube-router, cilium, multus, whereabouts\n',
      ],
      [['--root', path.join(tmp, 'nope')], `cni-sweep: error: --root ${path.join(tmp, 'nope')}: no such directory\n`],
      [['--only', 'routes'], "cni-sweep: error: unknown option '--only'\n  hint: see cni-sweep --help\n"],
    ] as const) {
      const r = await doctor(host, [...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(msg);
      expect(r.stdout).toBe('');
    }
  });

  it('without root it reads what it can and lists what it could not', async () => {
    const { host } = healthyFlannel();
    host.isRootUser = false;
    host.failQuery((a) => /^ip6?tables-(nft|legacy)-save$/.test(a[0]!), {
      code: 1,
      stderr: 'iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
    });
    host.unreadable.add('/var/lib/cni/networks/cbr0');
    const r = await json(host);
    expect(r.code).toBe(0);
    expect(r.report?.notChecked).toEqual([
      NO_KUBE,
      'iptables-nft-save: iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
      'iptables-legacy-save: iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
      'ip6tables-nft-save: iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
      'ip6tables-legacy-save: iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
      '/var/lib/cni/networks/cbr0: permission denied',
    ]);
    const t = await doctor(host);
    expect(t.stdout).toContain('\nnot checked: /var/lib/cni/networks/cbr0: permission denied\n');
  });

  it('is listed in --help with its own exit codes', async () => {
    const out = new Capture();
    const code = await main(['doctor', '--help'], {
      stdout: out.stream,
      stderr: new Capture().stream,
      stdinIsTty: false,
      stderrIsTty: false,
      env: {},
      makeHost: () => foreignNode(),
    });
    expect(code).toBe(0);
    expect(out.text).toContain('Exit codes: 0 healthy, 1 findings');
    for (const opt of ['--root', '--cni', '--node', '--kubeconfig', '--pod-cidr', '--json', '--verbose', '--no-color'])
      expect(out.text).toContain(opt);
  });
});

describe('a CNI the doctor knows only from its profile', () => {
  // Not a built-in: its overlay device, overhead, MTU advice, NetworkPolicy stance and leftovers' reasons are data.
  const MESHNET = {
    name: 'meshnet',
    description: 'a test CNI',
    config: { pluginTypes: ['meshnet'] },
    state: { paths: ['/run/meshnet'] },
    interfaces: { names: ['mesh0'] },
    routes: {},
    firewall: { chainPrefixes: ['MESH-'] },
    overlays: [{ pattern: '^mesh0$', kind: 'Geneve', overhead: 58 }],
    mtuSource: 'meshd sets it from --mtu',
    networkPolicy: { enforces: 'no' as const, advice: 'Run meshnet-policy beside it.' },
  };
  const [meshnet] = loadProfiles([MESHNET]);
  const meshNode = () => {
    const h = foreignNode();
    h.writeFile('/etc/cni/net.d/10-meshnet.conf', JSON.stringify({ cniVersion: '1.0.0', name: 'mesh', type: 'meshnet' }));
    h.addLink({ ifname: 'mesh0', mtu: 1500, linkinfo: { info_kind: 'geneve' } });
    return h;
  };
  const view = async (h: FakeHost) => {
    const profiles = [...knownProfiles(), meshnet!];
    return gatherView(h, { node: 'node-1', podCidrs: [], profiles, allProfiles: profiles }, new Gaps());
  };

  it('its overlay is held to the uplink less its overhead, with its own advice', async () => {
    const v = await view(meshNode());
    expect(v.inUse).toEqual(new Set(['meshnet']));
    const f = mtu.run(v);
    expect(f.map((x) => [x.id, x.title, x.evidence[0], x.fix])).toEqual([
      [
        'mtu-overlay',
        "mesh0's MTU 1500 is above what eth0 can carry after Geneve (1442)",
        'mesh0: mtu 1500 (Geneve adds 58 bytes)',
        ['ip', 'link', 'set', 'dev', 'mesh0', 'mtu', '1442'],
      ],
    ]);
    expect(f[0]!.why).toContain('(meshd sets it from --mtu)');
  });

  it('NetworkPolicy objects while it is in use: unenforced, with its advice', async () => {
    const v = await view(meshNode());
    v.kube.networkPolicies = [{ namespace: 'prod', name: 'deny-all' }];
    const [f, ...rest] = networkPolicy.run(v);
    expect(rest).toEqual([]);
    expect(f).toMatchObject({
      id: 'networkpolicy-unenforced',
      title: "1 NetworkPolicy object exists, but this node's pods use Meshnet, which does not enforce them",
      evidence: ['kubectl get networkpolicies -A: prod/deny-all', 'runtime uses: /etc/cni/net.d/10-meshnet.conf (meshnet)'],
    });
    expect(f!.why).toMatch(/with Meshnet alone nothing on this node enforces them .* Run meshnet-policy beside it\.$/);
  });

  it('its leftovers say why from its profile (leftoverWhy), and a generic sentence without one', async () => {
    // meshnet gone: its config removed, mesh0 and its MESH- chain left.
    const leftovers = async (p: Profile) => {
      const h = foreignNode();
      h.addLink({ ifname: 'mesh0', mtu: 1500, linkinfo: { info_kind: 'geneve' } });
      h.setIptables(
        'iptables-legacy',
        ['*filter', ':FORWARD ACCEPT [0:0]', ':MESH-FWD - [0:0]', '-A FORWARD -j MESH-FWD', 'COMMIT', ''].join('\n'),
      );
      const profiles = [...knownProfiles(), p];
      const v = await gatherView(h, { node: 'node-1', podCidrs: [], profiles, allProfiles: profiles }, new Gaps());
      return [...leftoverInterfaces.run(v), ...leftoverFirewall.run(v)].map((f) => [f.id, f.why]);
    };
    const [withWhy] = loadProfiles([
      {
        ...MESHNET,
        leftoverWhy: { interfaces: 'mesh0 keeps answering Geneve on UDP 6081.', firewall: 'MESH-FWD keeps dropping pod traffic.' },
      },
    ]);
    expect(await leftovers(withWhy!)).toEqual([
      [
        'leftover-interfaces',
        'mesh0 keeps answering Geneve on UDP 6081. No CNI config of meshnet is in use, so nothing on this node needs them.',
      ],
      [
        'leftover-firewall',
        'MESH-FWD keeps dropping pod traffic. cni-sweep removes only these, rule by rule, on every backend: never `iptables -F`.',
      ],
    ]);
    expect(await leftovers(meshnet!)).toEqual([
      [
        'leftover-interfaces',
        "They keep addresses and routes of a network that no longer exists on this node and conflict with the next CNI's devices. No CNI config of meshnet is in use, so nothing on this node needs them.",
      ],
      [
        'leftover-firewall',
        'Its rules keep filtering and rewriting traffic for a network that no longer exists on this node. cni-sweep removes only these, rule by rule, on every backend: never `iptables -F`.',
      ],
    ]);
  });

  it("Weave's profile file gives its leftovers their reasons", async () => {
    const weave = readProfileFile(path.join(__dirname, '../../profiles/weave.yaml'), 'profiles/weave.yaml');
    const h = foreignNode();
    h.addLink({ ifname: 'weave', linkinfo: { info_kind: 'bridge' } }).addAddr('weave', '10.32.0.1/12');
    const profiles = [...knownProfiles(), weave];
    const v = await gatherView(h, { node: 'node-1', podCidrs: [], profiles, allProfiles: profiles }, new Gaps());
    const [f, ...rest] = leftoverInterfaces.run(v);
    expect(rest).toEqual([]);
    expect(f).toMatchObject({
      title: "weave's interfaces remain while weave is not in use: weave",
      evidence: ['weave (bridge): up, 10.32.0.1/12'],
    });
    expect(f!.why).toMatch(/^A leftover weave bridge keeps its address in the old pod range \(10\.32\.0\.0\/12 by default\)/);
  });
});

describe('the recommended command', () => {
  it('several findings of a departed Flannel: one whole run at the end stands for their fixes, in text and JSON', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.link(pods[0]!.veth)!.mtu = 1500;
    const t = await doctor(host, ['--kubeconfig', '/k']);
    expect(t.code).toBe(1);
    // Each finding refers to the one command; none repeats it, none deletes pods or files by hand.
    expect(t.stdout.split('\n').filter((l) => l.startsWith('  fix:'))).toEqual(Array(3).fill('  fix:      the recommended command below'));
    expect(t.stdout).not.toMatch(/rm -f|delete pods|--only/);
    expect(t.stdout.slice(t.stdout.indexOf('\nrecommended:'))).toBe(
      [
        '',
        'recommended: cni-sweep run --cni flannel --kubeconfig /k',
        '  fixes:    cni-plugin-missing, ipam-stale, mtu-pod-veth',
        '  what:     one run in the safe order: drain, stop kubelet and the runtime, back up, remove, start them again',
        '  first:    the same options to `cni-sweep plan` print every command it will run',
        '  after:    the node stays cordoned: `kubectl --kubeconfig /k uncordon node-1` once a pod network runs',
        '',
      ].join('\n'),
    );
    const r = await json(host, ['--kubeconfig', '/k']);
    expect(r.report?.recommended).toEqual({
      command: 'cni-sweep run --cni flannel --kubeconfig /k',
      argv: ['cni-sweep', 'run', '--cni', 'flannel', '--kubeconfig', '/k'],
      fixes: ['cni-plugin-missing', 'ipam-stale', 'mtu-pod-veth'],
    });
    // A script following each finding's fix runs that same command; the drain's uncordon is not asked for on top.
    expect(r.findings.map((f) => [f.id, f.fix, f.then])).toEqual([
      ['cni-plugin-missing', 'cni-sweep run --cni flannel --kubeconfig /k', undefined],
      ['ipam-stale', 'cni-sweep run --cni flannel --kubeconfig /k', undefined],
      ['mtu-pod-veth', 'cni-sweep run --cni flannel --kubeconfig /k', undefined],
    ]);
  });

  it('a healthy node has no recommended command; a fix of a CNI that stays is its own line', async () => {
    const { host } = healthyFlannel();
    expect((await json(host)).report?.recommended).toBeNull();
    host.writeFile('/etc/cni/net.d/20-flannel.conflist', FLANNEL_CONFLIST);
    const t = await doctor(host);
    expect(t.stdout).toContain('  fix:      rm -f -- /etc/cni/net.d/20-flannel.conflist\n');
    expect(t.stdout).not.toContain('recommended');
  });
});

describe('what doctor did not check', () => {
  it('no kubeconfig: the API checks; no default route: MTU; with the same lookup as run (admin.conf under the root)', async () => {
    const { host, pods } = healthyFlannel();
    host.link(pods[0]!.veth)!.mtu = 1500;
    host.routes[4] = host.routes[4].filter((r) => r.dst !== 'default');
    host.routes[6] = host.routes[6].filter((r) => r.dst !== 'default');
    const r = await json(host);
    // Without an uplink there is no MTU to compare with: no MTU finding, and the report says so.
    expect(r.findings.filter((f) => f.id.startsWith('mtu'))).toEqual([]);
    expect(r.report?.notChecked).toEqual([NO_KUBE, 'MTU: no default route, so no uplink whose MTU the overlay and the pods must fit in']);
    const t = await doctor(host);
    expect(t.stdout).toContain(
      `\nnot checked: ${NO_KUBE}\nnot checked: MTU: no default route, so no uplink whose MTU the overlay and the pods must fit in\n`,
    );
    // run's drain finds /etc/kubernetes/admin.conf without --kubeconfig: so does doctor, and asks the API with it.
    host.writeFile('/etc/kubernetes/admin.conf', 'apiVersion: v1\nkind: Config\n');
    const withAdmin = await json(host);
    expect(withAdmin.report?.notChecked).not.toContain(NO_KUBE);
    expect(host.queries.map((q) => q.join(' '))).toContain('kubectl --kubeconfig /etc/kubernetes/admin.conf get node node-1 -o json');
  });

  it('a node without a CNI config is said to be NotReady', async () => {
    const t = await doctor(foreignNode());
    expect(t.stdout).toContain('\nCNI in use: none (no CNI config: kubelet reports the node NotReady until a pod network installs one)\n');
  });
});

describe('doctor --json follows schema/doctor.schema.json', () => {
  const { validator, issues } = publishedSchema('doctor');
  const valid = (doc: unknown) => {
    expect(issues(doc)).toEqual([]);
  };

  it('healthy and unhealthy nodes, with and without a recommended command, a then and a finding without a fix: all valid', async () => {
    const docs: DoctorJson[] = [];
    const add = async (host: FakeHost, args: string[] = []) => docs.push((await json(host, args)).report!);
    await add(healthyFlannel().host);
    await add(foreignNode());
    const dirty = dirtyFlannelNode().host;
    removeFile(dirty, '/etc/cni/net.d/10-flannel.conflist');
    addCalico(dirty);
    await add(dirty, ['--root', '/', '--pod-cidr', '10.244.0.0/16']);
    const veth = healthyFlannel();
    veth.host.link(veth.pods[0]!.veth)!.mtu = 1500;
    veth.host.writeFile('/etc/cni/net.d/05-broken.conf', '{ not json');
    await add(veth.host, ['--kubeconfig', '/k']);
    for (const d of docs) valid(d);
    // The documents cover every optional shape the schema describes.
    expect(docs.map((d) => d.healthy)).toEqual([true, true, false, false]);
    expect(docs.some((d) => d.recommended !== null)).toBe(true);
    expect(docs.flatMap((d) => d.findings).some((f) => f.then !== undefined && f.thenArgv !== undefined)).toBe(true);
    expect(docs.flatMap((d) => d.findings).some((f) => f.fix === null && f.fixArgv === null)).toBe(true);
  });

  it('rejects what it does not describe: an unknown field, a severity, a recommended command without its fixes', async () => {
    const { report } = await json(dirtyFlannelNode().host);
    valid(report);
    expect(validator.safeParse({}).success).toBe(false);
    expect(validator.safeParse({ ...report, surprise: 1 }).success).toBe(false);
    const f = report!.findings[0]!;
    expect(validator.safeParse({ ...report, findings: [{ ...f, extra: 'x' }] }).success).toBe(false);
    expect(validator.safeParse({ ...report, findings: [{ ...f, severity: 'fatal' }] }).success).toBe(false);
    expect(validator.safeParse({ ...report, recommended: { command: 'cni-sweep run', argv: ['cni-sweep', 'run'] } }).success).toBe(false);
  });
});
