// The bpf phase on the fake node: tc filters, clsact qdiscs and XDP programs matched by program
// name, bpffs pins by glob; what is not the CNI's (another program, a u32 filter, another qdisc,
// another pin) stays. The real kernel's side is test/integration/bpf.test.ts.
import { describe, expect, it } from 'vitest';
import { silentReporter } from '../../src/events.js';
import { FakeHost } from '../../src/host/fake.js';
import { addQdisc, addTcFilter, attachXdp, mountBpffs, tcState } from '../../src/host/fake/bpf.js';
import { ManifestSchema } from '../../src/backup/manifest.js';
import { bpf, PINS_NOT_RESTORABLE } from '../../src/phases/bpf.js';
import { PHASES } from '../../src/phases/index.js';
import type { PlannedStep } from '../../src/phases/types.js';
import { renderScript } from '../../src/plan.js';
import { ProfileSchema, type Profile } from '../../src/profiles/schema.js';
import { sweep } from '../../src/run.js';
import { foreignNode } from './fake-node.js';
import { ctxFor, DEFAULT_PHASES, FLANNEL, isolateKubeconfigEnv, runOptions } from './helpers.js';

isolateKubeconfigEnv();

/** A made-up eBPF CNI: its programs by exact name and by pattern, its pins by glob. */
const EBPF: Profile = ProfileSchema.parse({
  name: 'ebpfnet',
  description: 'a made-up eBPF CNI',
  config: { pluginTypes: ['ebpfnet'] },
  state: { paths: ['/var/run/ebpfnet'] },
  interfaces: { names: ['ebpf_host', 'ebpf_net'], patterns: ['^lxc[0-9a-f]{12}$'] },
  routes: {},
  firewall: { chainPrefixes: [] },
  bpf: {
    programNames: ['cil_from_netdev', 'cil_to_netdev'],
    programPatterns: ['^cil_xdp_'],
    filterNamePatterns: ['^bpf_(host|netdev)\\.o:\\['],
    pins: ['tc/globals/cilium_*', 'cilium'],
  },
});

const bare = (steps: PlannedStep[]) => steps.map((s) => (s.stdin === undefined ? { argv: s.argv } : { argv: s.argv, stdin: s.stdin }));
const xdpOf = (h: FakeHost, dev: string) => (h.link(dev)!.xdp as { attached: Array<{ prog: { name: string } }> } | undefined)?.attached;

/** eth0 with the CNI's programs only; eth1 shares its clsact with a site's u32 filter; eth2 carries another program. */
function ebpfNode(init = {}): FakeHost {
  const h = foreignNode(init);
  h.addLink({ ifname: 'eth1' }).addLink({ ifname: 'eth2' }).addLink({ ifname: 'eth3' });
  h.addLink({ ifname: 'ebpf_host', linkinfo: { info_kind: 'veth' }, link: 'ebpf_net' });
  h.addLink({ ifname: 'ebpf_net', linkinfo: { info_kind: 'veth' }, link: 'ebpf_host' });
  addQdisc(h, 'eth0', 'clsact');
  addTcFilter(h, 'eth0', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
  addTcFilter(h, 'eth0', { dir: 'egress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_to_netdev' });
  addQdisc(h, 'eth1', 'clsact');
  addTcFilter(h, 'eth1', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
  addTcFilter(h, 'eth1', { dir: 'ingress', pref: 5, kind: 'u32', handle: '800::800' });
  addQdisc(h, 'eth2', 'clsact');
  addTcFilter(h, 'eth2', { dir: 'egress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'site_shaper' });
  // A classifier instance holding the CNI's program and another one: neither goes.
  addTcFilter(h, 'eth2', { dir: 'ingress', pref: 2, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
  addTcFilter(h, 'eth2', { dir: 'ingress', pref: 2, kind: 'bpf', handle: '0x2', prog: 'site_counter' });
  addQdisc(h, 'eth3', 'ingress');
  addTcFilter(h, 'eth3', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
  // The CNI's own device goes in the interfaces phase, with what is attached to it.
  addQdisc(h, 'ebpf_host', 'clsact');
  addTcFilter(h, 'ebpf_host', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_to_netdev' });
  attachXdp(h, 'eth0', 2, 'cil_xdp_entry');
  attachXdp(h, 'eth2', 1, 'site_xdp_fw');
  mountBpffs(h, '/sys/fs/bpf');
  for (const p of [
    'tc/globals/cilium_lxc',
    'tc/globals/cilium_ipcache_v2',
    'tc/globals/site_map',
    'cilium/devices/eth0/links/cil_from_netdev',
  ])
    h.writeFile(`/sys/fs/bpf/${p}`, '', 0o600);
  h.writeFile('/sys/fs/bpf/site/cilium_lookalike', '', 0o600);
  // Not on a bpffs: a plain directory of the same name is nobody's pin.
  h.writeFile('/srv/bpf/cilium/readme', 'site file\n');
  return h;
}

const EXPECTED_STEPS = [
  {
    argv: ['tc', '-batch', '-'],
    stdin: [
      'filter del dev eth0 ingress pref 1 handle 0x1 bpf',
      'filter del dev eth0 egress pref 1 handle 0x1 bpf',
      'qdisc del dev eth0 clsact',
      'filter del dev eth1 ingress pref 1 handle 0x1 bpf',
      'filter del dev eth3 ingress pref 1 handle 0x1 bpf',
      '',
    ].join('\n'),
  },
  { argv: ['rm', '-rf', '--', '/sys/fs/bpf/tc/globals/cilium_ipcache_v2', '/sys/fs/bpf/tc/globals/cilium_lxc', '/sys/fs/bpf/cilium'] },
  { argv: ['ip', '-batch', '-'], stdin: 'link set dev eth0 xdpgeneric off\n' },
];

describe('bpf', () => {
  it("plans the exact commands for the CNI's filters, clsact, XDP and pins, and says what stays and why", async () => {
    const h = ebpfNode();
    const plan = await bpf.plan(await ctxFor(h, { profiles: [EBPF] }));
    expect(bare(plan.steps)).toEqual(EXPECTED_STEPS);
    expect(plan.steps.map((s) => s.removes)).toEqual([
      {
        kind: 'BPF attachment',
        items: [
          'tc filter eth0 ingress pref 1 handle 0x1 (cil_from_netdev)',
          'tc filter eth0 egress pref 1 handle 0x1 (cil_to_netdev)',
          'clsact qdisc of eth0',
          'tc filter eth1 ingress pref 1 handle 0x1 (cil_from_netdev)',
          'tc filter eth3 ingress pref 1 handle 0x1 (cil_from_netdev)',
        ],
      },
      {
        kind: 'BPF pin',
        items: ['/sys/fs/bpf/tc/globals/cilium_ipcache_v2', '/sys/fs/bpf/tc/globals/cilium_lxc', '/sys/fs/bpf/cilium'],
      },
      { kind: 'BPF attachment', items: ['XDP eth0 generic (cil_xdp_entry)'] },
    ]);
    expect(plan.notes).toEqual([
      PINS_NOT_RESTORABLE,
      "kept the clsact qdisc of eth1: 1 filter preference on it is not the CNI's",
      "kept eth2 ingress pref 2: it also holds filters that are not the CNI's (bpf cil_from_netdev, bpf site_counter)",
      "kept the ingress qdisc of eth3: only a clsact qdisc the CNI's filters alone use is removed",
      'tcx and netkit attachments (BPF links) are not listed by tc or ip: only those pinned in the pins above are removed',
    ]);
  });

  it('applied, leaves only what is not the CNI: the u32 filter, the other programs, their qdiscs, other pins', async () => {
    const h = ebpfNode();
    const plan = await bpf.plan(await ctxFor(h, { profiles: [EBPF] }));
    for (const s of plan.steps) await h.apply(s);
    expect(tcState(h)).toEqual([
      'filter ebpf_host ingress pref 1 bpf 0x1 cil_to_netdev',
      'filter eth1 ingress pref 5 u32 800::800',
      'filter eth2 egress pref 1 bpf 0x1 site_shaper',
      'filter eth2 ingress pref 2 bpf 0x1 cil_from_netdev',
      'filter eth2 ingress pref 2 bpf 0x2 site_counter',
      'qdisc ebpf_host clsact',
      'qdisc eth1 clsact',
      'qdisc eth2 clsact',
      'qdisc eth3 ingress',
    ]);
    expect(h.link('eth0')!.xdp).toBeUndefined();
    expect(xdpOf(h, 'eth2')!.map((a) => a.prog.name)).toEqual(['site_xdp_fw']);
    expect(h.paths().filter((p) => p.startsWith('/sys/fs/bpf') || p.startsWith('/srv'))).toEqual([
      '/srv/',
      '/srv/bpf/',
      '/srv/bpf/cilium/',
      '/srv/bpf/cilium/readme',
      '/sys/fs/bpf/',
      '/sys/fs/bpf/site/',
      '/sys/fs/bpf/site/cilium_lookalike',
      '/sys/fs/bpf/tc/',
      '/sys/fs/bpf/tc/globals/',
      '/sys/fs/bpf/tc/globals/site_map',
    ]);
    // A second plan finds nothing left of the CNI.
    expect((await bpf.plan(await ctxFor(h, { profiles: [EBPF] }))).steps).toEqual([]);
  });

  it('without the interfaces phase, also detaches from the devices that phase would delete', async () => {
    const h = ebpfNode();
    const ctx = await ctxFor(h, { profiles: [EBPF], selected: new Set(DEFAULT_PHASES.filter((p) => p !== 'interfaces')) });
    const stdin = (await bpf.plan(ctx)).steps.find((s) => s.argv[0] === 'tc')!.stdin!;
    expect(stdin.split('\n')).toContain('filter del dev ebpf_host ingress pref 1 handle 0x1 bpf');
    expect(stdin.split('\n')).toContain('qdisc del dev ebpf_host clsact');
  });

  it('recognises a filter an iproute2 loader named after its object, whose program has no name', async () => {
    const h = new FakeHost();
    h.addLink({ ifname: 'eth0' }).addLink({ ifname: 'eth1' });
    addQdisc(h, 'eth0', 'clsact');
    addTcFilter(h, 'eth0', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: '', name: 'bpf_netdev.o:[from-netdev]' });
    addQdisc(h, 'eth1', 'clsact');
    addTcFilter(h, 'eth1', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: '', name: 'site_bpf_netdev.o:[from-netdev]' });
    const plan = await bpf.plan(await ctxFor(h, { profiles: [EBPF] }));
    expect(bare(plan.steps)).toEqual([
      { argv: ['tc', '-batch', '-'], stdin: 'filter del dev eth0 ingress pref 1 handle 0x1 bpf\nqdisc del dev eth0 clsact\n' },
    ]);
    expect(plan.steps[0]!.removes!.items).toEqual([
      'tc filter eth0 ingress pref 1 handle 0x1 (bpf_netdev.o:[from-netdev])',
      'clsact qdisc of eth0',
    ]);
  });

  it('finds pins under --root only, and each bpffs mount', async () => {
    const h = new FakeHost({ root: '/tmp/node' });
    mountBpffs(h, '/sys/fs/bpf');
    mountBpffs(h, '/run/cilium/bpffs');
    h.writeFile('/sys/fs/bpf/cilium/x', '', 0o600).writeFile('/run/cilium/bpffs/tc/globals/cilium_ct4_global', '', 0o600);
    const plan = await bpf.plan(await ctxFor(h, { profiles: [EBPF] }));
    expect(bare(plan.steps)).toEqual([
      { argv: ['rm', '-rf', '--', '/tmp/node/sys/fs/bpf/cilium', '/tmp/node/run/cilium/bpffs/tc/globals/cilium_ct4_global'] },
    ]);
  });

  it('a profile without BPF state reads nothing of it', async () => {
    const h = ebpfNode();
    const plan = await bpf.plan(await ctxFor(h, { profiles: [FLANNEL] }));
    expect(plan).toEqual({ steps: [], notes: [] });
    expect(h.queries.filter((q) => q[0] === 'tc' || q[0] === 'findmnt')).toEqual([]);
  });

  it('without tc and findmnt, says what it could not check and still detaches XDP', async () => {
    const h = ebpfNode().removeBinary('tc', 'findmnt');
    const plan = await bpf.plan(await ctxFor(h, { profiles: [EBPF] }));
    expect(bare(plan.steps)).toEqual([{ argv: ['ip', '-batch', '-'], stdin: 'link set dev eth0 xdpgeneric off\n' }]);
    expect(plan.notes.slice(0, 2)).toEqual([
      'findmnt is not installed: bpffs pins not checked',
      'tc is not installed: tc filters not checked',
    ]);
  });

  it('a device name tc -batch cannot take as one word is left alone', async () => {
    const h = new FakeHost();
    h.addLink({ ifname: 'eth#0' });
    addQdisc(h, 'eth#0', 'clsact');
    addTcFilter(h, 'eth#0', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
    attachXdp(h, 'eth#0', 2, 'cil_xdp_entry');
    const plan = await bpf.plan(await ctxFor(h, { profiles: [EBPF] }));
    expect(plan.steps).toEqual([]);
    expect(plan.notes).toEqual([
      'left alone: the clsact qdisc of "eth#0": a device name tc -batch cannot take as one word',
      'left alone: XDP program cil_xdp_entry on "eth#0" (attach mode 2)',
      'tcx and netkit attachments (BPF links) are not listed by tc or ip: only those pinned in the pins above are removed',
    ]);
  });

  it('a run records what it removed in the manifest, says it cannot be restored, and the plan script has the commands', async () => {
    const h = ebpfNode();
    h.writeFile('/etc/cni/net.d/05-ebpfnet.conflist', '{"cniVersion":"0.3.1","name":"ebpf","plugins":[{"type":"ebpfnet"}]}');
    const req = {
      host: h,
      profiles: [EBPF],
      phases: PHASES,
      selected: new Set(DEFAULT_PHASES.filter((p) => !['drain', 'remove-sandboxes'].includes(p))),
      reporter: silentReporter,
    };
    const dry = await sweep({ ...req, opts: runOptions({ dryRun: true }) });
    const script = renderScript(dry.plans, dry.report, '0.0.0-test');
    expect(script).toContain(
      "\n# == bpf: detach the CNI's BPF programs from host devices (tc filters, clsact qdiscs, XDP) and remove its bpffs pins\n",
    );
    expect(script).toContain(
      "tc -batch - <<'CNI_SWEEP_EOF'\nfilter del dev eth0 ingress pref 1 handle 0x1 bpf\nfilter del dev eth0 egress pref 1 handle 0x1 bpf\nqdisc del dev eth0 clsact\n",
    );
    expect(dry.report.wouldRemove!.bpfPins.count).toBe(3);
    expect(dry.report.wouldRemove!.bpfAttachments.count).toBe(6);

    const r = await sweep({ ...req, opts: runOptions({ dryRun: false }) });
    expect(r.report.failed).toBeUndefined();
    expect(r.report.removed.bpfAttachments.names).toContain('XDP eth0 generic (cil_xdp_entry)');
    const manifest = ManifestSchema.parse(JSON.parse(h.fileAt(`${r.report.backup!}/manifest.json`)!));
    expect(manifest.bpf).toEqual({
      attachments: [
        'tc filter eth0 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'tc filter eth0 egress pref 1 handle 0x1 (cil_to_netdev)',
        'clsact qdisc of eth0',
        'tc filter eth1 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'tc filter eth3 ingress pref 1 handle 0x1 (cil_from_netdev)',
        'XDP eth0 generic (cil_xdp_entry)',
      ],
      pins: ['/sys/fs/bpf/tc/globals/cilium_ipcache_v2', '/sys/fs/bpf/tc/globals/cilium_lxc', '/sys/fs/bpf/cilium'],
      restorable: false,
    });
    // The bpf phase ran before interfaces deleted ebpf_host, whose filter went with it.
    const order = h.calls.map((c) => (c.argv[0] === 'tc' ? 'tc' : c.stdin?.includes('link delete') ? 'links' : null)).filter(Boolean);
    expect(order).toEqual(['tc', 'links']);
    expect(tcState(h)).not.toContain('qdisc ebpf_host clsact');
  });
});

describe('fake host: BPF', () => {
  it('fails closed on tc commands and lines it does not model', async () => {
    const h = new FakeHost();
    h.addLink({ ifname: 'eth0' });
    await expect(h.apply({ argv: ['tc', 'qdisc', 'del', 'dev', 'eth0', 'root'] })).rejects.toThrow(/^FakeHost: unsupported tc command/);
    await expect(h.apply({ argv: ['tc', '-batch', '-'], stdin: 'qdisc del dev eth0 root\n' })).rejects.toThrow(
      /unsupported tc -batch line/,
    );
    await expect(h.query(['tc', '-s', 'qdisc', 'show'])).rejects.toThrow(/^FakeHost: unsupported query/);
  });

  it('answers a filter delete the way tc does when nothing matches, and stops the batch there', async () => {
    const h = new FakeHost();
    h.addLink({ ifname: 'eth0' });
    addQdisc(h, 'eth0', 'clsact');
    addTcFilter(h, 'eth0', { dir: 'ingress', pref: 1, kind: 'bpf', handle: '0x1', prog: 'cil_from_netdev' });
    await expect(
      h.apply({ argv: ['tc', '-batch', '-'], stdin: 'filter del dev eth0 ingress pref 1 handle 0x2 bpf\nqdisc del dev eth0 clsact\n' }),
    ).rejects.toMatchObject({ exitCode: 1, stderr: 'Error: Specified filter handle not found.\nCommand failed -:1\n' });
    expect(tcState(h)).toEqual(['filter eth0 ingress pref 1 bpf 0x1 cil_from_netdev', 'qdisc eth0 clsact']);
  });
});

describe('profile schema: bpf', () => {
  const base = {
    name: 'x',
    description: 'x',
    config: { pluginTypes: ['x'] },
    state: { paths: [] },
    interfaces: { names: [] },
    routes: {},
    firewall: { chainPrefixes: [] },
  };
  it('defaults to no BPF state, so existing profiles stay valid', () => {
    expect(ProfileSchema.parse(base).bpf).toEqual({ programNames: [], programPatterns: [], filterNamePatterns: [], pins: [] });
    expect(FLANNEL.bpf).toEqual({ programNames: [], programPatterns: [], filterNamePatterns: [], pins: [] });
  });
  it.each([
    [{ programNames: ['cil_from_netdev_x'] }, 'programNames'],
    [{ programNames: ['cil-from'] }, 'programNames'],
    [{ programPatterns: ['(cil'] }, 'programPatterns'],
    [{ filterNamePatterns: ['[bpf'] }, 'filterNamePatterns'],
    [{ pins: ['/sys/fs/bpf/cilium'] }, 'pins'],
    [{ pins: ['tc/../cilium'] }, 'pins'],
    [{ pins: ['tc/globals/'] }, 'pins'],
    [{ pins: ['*'] }, 'pins'],
  ])('rejects %j', (bpfSpec, field) => {
    const r = ProfileSchema.safeParse({ ...base, bpf: bpfSpec });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path.slice(0, 2)).toEqual(['bpf', field]);
  });
});
