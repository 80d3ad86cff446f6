// The bpf phase on the real kernel: BPF programs loaded and attached by tc and ip (fixtures/bpf:
// Cilium's program names and a site's own), a bpffs mounted under the test's root with maps pinned
// by bpf(2), beside what is not the CNI's: a u32 filter on the same clsact, a site's BPF program on
// its own clsact, a site's XDP program, a root pfifo qdisc, an ingress qdisc, other pins. The CLI
// knows only built-in profiles, so a made-up eBPF CNI's profile goes through sweep() and RealHost
// in the test's network namespace (test/helpers/profile-sweep.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Report } from '../../src/run.js';
import { inNs, sh } from '../helpers/flannel-node.js';
import { REPO, scratch } from '../helpers/harness.js';

const OBJ = path.join(REPO, 'fixtures/bpf/progs.o');
const PIN = path.join(REPO, 'test/helpers/bpf-pin.py');
const RUNNER = path.join(REPO, 'test/helpers/profile-sweep.ts');
const VITE_NODE = path.join(REPO, 'node_modules/.bin/vite-node');

const PROFILE = {
  name: 'ebpfnet',
  description: 'a made-up eBPF CNI with Cilium-like program names and pins',
  config: { pluginTypes: ['ebpfnet'] },
  state: { paths: [] },
  interfaces: { names: [] },
  routes: {},
  firewall: { chainPrefixes: [] },
  bpf: { programNames: ['cil_from_netdev', 'cil_to_netdev'], programPatterns: ['^cil_xdp_'], pins: ['cilium', 'tc/globals/cilium_*'] },
};

const PINS = ['/sys/fs/bpf/cilium', '/sys/fs/bpf/tc/globals/cilium_ipcache', '/sys/fs/bpf/tc/globals/cilium_lxc'];

interface BpfNode {
  ns: string;
  root: string;
  bpffs: string;
}

const made: BpfNode[] = [];
afterEach(() => {
  while (made.length) {
    const n = made.pop()!;
    spawnSync('umount', ['--lazy', n.bpffs]);
    spawnSync('ip', ['netns', 'delete', n.ns]);
    fs.rmSync(path.dirname(n.root), { recursive: true, force: true });
  }
});

// iproute2 mounts a bpffs at /sys/fs/bpf when it loads an object and finds none: TC_BPF_MNT points
// it at the test's own bpffs instead, so nothing outside the test's root is mounted.
const tc = (n: BpfNode, ...args: string[]) => inNs(n.ns, 'env', [`TC_BPF_MNT=${n.bpffs}`, 'tc', ...args]);
const ipLoad = (n: BpfNode, ...args: string[]) => inNs(n.ns, 'env', [`TC_BPF_MNT=${n.bpffs}`, 'ip', ...args]);

function bpfNode(tag: string): BpfNode {
  const s = scratch(tag);
  const n: BpfNode = { ...s, bpffs: path.join(s.root, 'sys/fs/bpf') };
  fs.mkdirSync(n.bpffs, { recursive: true });
  sh('ip', ['netns', 'add', n.ns]);
  made.push(n);
  // Link-local addresses (and their local routes) without duplicate address detection: present when
  // the links come up, not a second later, in the middle of a before/after comparison.
  inNs(n.ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
  inNs(
    n.ns,
    'ip',
    ['-batch', '-'],
    [
      'link set lo up',
      'link add eth0 type veth peer name ext0',
      'link add eth1 type veth peer name ext1',
      ...['eth0', 'ext0', 'eth1', 'ext1'].map((d) => `link set ${d} up`),
      'addr add 192.168.1.11/24 dev eth0',
      'route add default via 192.168.1.1 dev eth0',
    ].join('\n') + '\n',
  );
  sh('mount', ['-t', 'bpf', 'bpf', n.bpffs]);
  // eth0: the CNI's programs alone on a clsact, and its XDP program.
  tc(n, 'qdisc', 'add', 'dev', 'eth0', 'clsact');
  tc(n, 'filter', 'add', 'dev', 'eth0', 'ingress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', OBJ, 'sec', 'tc-cil-from');
  tc(n, 'filter', 'add', 'dev', 'eth0', 'egress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', OBJ, 'sec', 'tc-cil-to');
  ipLoad(n, 'link', 'set', 'dev', 'eth0', 'xdpgeneric', 'obj', OBJ, 'sec', 'xdp-cil');
  // eth1: the CNI's filter beside a site's u32 filter on one clsact, under the site's root qdisc.
  tc(n, 'qdisc', 'add', 'dev', 'eth1', 'root', 'pfifo', 'limit', '100');
  tc(n, 'qdisc', 'add', 'dev', 'eth1', 'clsact');
  tc(n, 'filter', 'add', 'dev', 'eth1', 'ingress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', OBJ, 'sec', 'tc-cil-from');
  tc(n, 'filter', 'add', 'dev', 'eth1', 'ingress', 'pref', '5', 'protocol', 'ip', 'u32', 'match', 'ip', 'dst', '10.9.9.9/32');
  // ext0: the CNI's filter on an ingress qdisc (not a clsact: the qdisc stays).
  tc(n, 'qdisc', 'add', 'dev', 'ext0', 'ingress');
  tc(n, 'filter', 'add', 'dev', 'ext0', 'ingress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', OBJ, 'sec', 'tc-cil-from');
  // ext1: a site's own BPF programs, tc and XDP (native mode).
  tc(n, 'qdisc', 'add', 'dev', 'ext1', 'clsact');
  tc(n, 'filter', 'add', 'dev', 'ext1', 'egress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', OBJ, 'sec', 'tc-site');
  ipLoad(n, 'link', 'set', 'dev', 'ext1', 'xdpdrv', 'obj', OBJ, 'sec', 'xdp-site');
  // The bpffs, with the CNI's pins and others.
  for (const d of ['tc/globals', 'cilium/devices/eth0/links', 'cilium/devices/eth1/links', 'site'])
    fs.mkdirSync(path.join(n.bpffs, d), { recursive: true });
  sh('python3', [
    PIN,
    ...['tc/globals/cilium_lxc', 'tc/globals/cilium_ipcache', 'tc/globals/site_map', 'cilium/devices/eth0/links/cil_from_netdev'].map((p) =>
      path.join(n.bpffs, p),
    ),
    path.join(n.bpffs, 'site/cilium_lookalike'),
  ]);
  // eth1: the CNI's XDP program held by a pinned bpf_link, as Cilium attaches XDP today.
  ipLoad(n, 'link', 'set', 'dev', 'eth1', 'xdpgeneric', 'obj', OBJ, 'sec', 'xdp-cil');
  inNs(n.ns, 'python3', [PIN, '--xdp-link', 'eth1', path.join(n.bpffs, 'cilium/devices/eth1/links/cil_xdp_entry')]);
  fs.writeFileSync(path.join(path.dirname(n.root), 'profile.json'), JSON.stringify(PROFILE));
  return n;
}

/** Plans or runs the phases with the profile, in the node's network namespace. */
function sweepWith(n: BpfNode, mode: 'plan' | 'run', phases: string): { report: Report; script: string } {
  const base = path.dirname(n.root);
  const r = spawnSync(
    '/usr/bin/nsenter',
    [
      `--net=/run/netns/${n.ns}`,
      VITE_NODE,
      RUNNER,
      '--',
      mode,
      n.root,
      path.join(base, 'profile.json'),
      phases,
      path.join(base, 'backups'),
    ],
    { encoding: 'utf8', cwd: REPO, timeout: 120_000 },
  );
  if (r.status !== 0) throw new Error(`profile-sweep ${mode} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { report: Report; script: string };
}

/** Everything below a directory, relative, directories with a trailing "/". */
function tree(dir: string, rel = ''): string[] {
  return fs
    .readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => {
      const p = rel ? `${rel}/${e.name}` : e.name;
      return e.isDirectory() ? [`${p}/`, ...tree(dir, p)] : [p];
    })
    .sort();
}

/** What is not the CNI's, as the kernel prints it: must come out of a run byte for byte. */
const foreign = (n: BpfNode) => ({
  eth1Qdiscs: tc(n, 'qdisc', 'show', 'dev', 'eth1'),
  eth1U32: tc(n, 'filter', 'show', 'dev', 'eth1', 'ingress', 'pref', '5'),
  ext0Qdiscs: tc(n, 'qdisc', 'show', 'dev', 'ext0'),
  ext1Qdiscs: tc(n, 'qdisc', 'show', 'dev', 'ext1'),
  ext1Egress: tc(n, 'filter', 'show', 'dev', 'ext1', 'egress'),
  ext1Xdp: inNs(n.ns, 'ip', ['-d', 'link', 'show', 'ext1']),
  routes: inNs(n.ns, 'ip', ['route', 'show', 'table', 'all']),
});

const stepsOf = (report: Report, phase: string) =>
  report.phases
    .find((p) => p.name === phase)!
    .steps.map((s) => (s.stdin === undefined ? { argv: s.argv } : { argv: s.argv, stdin: s.stdin }));

/** The node after the CNI's BPF state is gone: what was not the CNI's is exactly as before. */
function expectClean(n: BpfNode, before: ReturnType<typeof foreign>) {
  expect(foreign(n)).toEqual(before);
  expect(JSON.parse(tc(n, '-j', 'qdisc', 'show', 'dev', 'eth0'))).toEqual([expect.objectContaining({ kind: 'noqueue' })]);
  expect(inNs(n.ns, 'ip', ['-d', 'link', 'show', 'eth0'])).not.toMatch(/xdp/);
  expect(inNs(n.ns, 'ip', ['-d', 'link', 'show', 'eth1'])).not.toMatch(/xdp/);
  expect(tc(n, 'filter', 'show', 'dev', 'eth1', 'ingress')).not.toMatch(/cil_/);
  expect(tc(n, 'filter', 'show', 'dev', 'ext0', 'ingress')).toBe('');
  // ip and xdp are iproute2's links to tc/ (its layout when it loads an object): not the CNI's, they stay.
  expect(tree(n.bpffs)).toEqual([
    'ip',
    'maps.debug',
    'progs.debug',
    'site/',
    'site/cilium_lookalike',
    'tc/',
    'tc/globals/',
    'tc/globals/site_map',
    'xdp',
  ]);
}

describe('bpf on the real kernel', () => {
  it("plans exactly the CNI's filters, clsact, XDP and pins; the run removes them and leaves everything else byte for byte", () => {
    const n = bpfNode('bpf');
    const before = foreign(n);
    expect(before.ext1Egress).toMatch(/name site_counter/);
    expect(before.ext1Xdp).toMatch(/prog\/xdp id \d+ name site_xdp_fw/);

    const plan = sweepWith(n, 'plan', 'backup,bpf');
    expect(stepsOf(plan.report, 'bpf')).toEqual([
      {
        argv: ['tc', '-batch', '-'],
        stdin: [
          'filter del dev ext0 ingress pref 1 handle 0x1 bpf',
          'filter del dev eth0 ingress pref 1 handle 0x1 bpf',
          'filter del dev eth0 egress pref 1 handle 0x1 bpf',
          'qdisc del dev eth0 clsact',
          'filter del dev eth1 ingress pref 1 handle 0x1 bpf',
          '',
        ].join('\n'),
      },
      {
        argv: ['rm', '-rf', '--', ...['cilium', 'tc/globals/cilium_ipcache', 'tc/globals/cilium_lxc'].map((p) => path.join(n.bpffs, p))],
      },
      { argv: ['ip', '-batch', '-'], stdin: 'link set dev eth0 xdpgeneric off\nlink set dev eth1 xdpgeneric off\n' },
    ]);
    expect(plan.report.phases.find((p) => p.name === 'bpf')!.notes).toEqual([
      'pinned BPF objects are not backed up and `restore` cannot put them back: their contents live in the kernel (the CNI agent creates them again when it starts); the backup manifest lists them',
      "kept the ingress qdisc of ext0: only a clsact qdisc the CNI's filters alone use is removed",
      "kept the clsact qdisc of eth1: 1 filter preference on it is not the CNI's",
      'tcx and netkit attachments (BPF links) are not listed by tc or ip: only those pinned in the pins above are removed',
    ]);
    expect(plan.report.wouldRemove).toMatchObject({ bpfPins: { count: 3 }, bpfAttachments: { count: 7 } });
    // Why the pins go before XDP is detached: the kernel refuses to detach a program a bpf_link holds.
    const refused = spawnSync('/usr/bin/nsenter', [`--net=/run/netns/${n.ns}`, 'ip', 'link', 'set', 'dev', 'eth1', 'xdpgeneric', 'off'], {
      encoding: 'utf8',
    });
    expect([refused.status, refused.stderr]).toEqual([2, "Error: Can't replace active BPF XDP link.\n"]);
    // A plan changes nothing.
    expect(foreign(n)).toEqual(before);
    expect(tree(n.bpffs)).toContain('tc/globals/cilium_lxc');

    const run = sweepWith(n, 'run', 'backup,bpf');
    expect(run.report.failed).toBeUndefined();
    expect(run.report.removed.bpfAttachments.count).toBe(7);
    expect(run.report.removed.bpfPins.names).toEqual(PINS);
    expectClean(n, before);
    const manifest = JSON.parse(fs.readFileSync(path.join(run.report.backup!, 'manifest.json'), 'utf8')) as {
      bpf: unknown;
      files: string[];
    };
    expect(manifest.bpf).toEqual({
      attachments: [
        'tc filter ext0 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'tc filter eth0 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'tc filter eth0 egress pref 1 handle 0x1 (cil_to_netdev)',
        'clsact qdisc of eth0',
        'tc filter eth1 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'XDP eth0 generic (cil_xdp_entry)',
        'XDP eth1 generic (cil_xdp_entry)',
      ],
      pins: PINS,
      restorable: false,
    });
    // Nothing of the bpffs went into files.tar: a pin has no contents to save.
    expect(manifest.files).toEqual([]);

    // A second plan finds nothing left to do.
    const again = sweepWith(n, 'plan', 'bpf');
    expect(stepsOf(again.report, 'bpf')).toEqual([]);
    expect(again.report.wouldChange).toBe(false);
  });

  it('the plan script run by bash reaches the same end state as run', () => {
    const n = bpfNode('bpfsh');
    const before = foreign(n);
    const { script } = sweepWith(n, 'plan', 'bpf');
    const r = spawnSync('/usr/bin/nsenter', [`--net=/run/netns/${n.ns}`, 'bash', '-c', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expectClean(n, before);
  });
});
