// Cilium as a removal target, on real kernel state: its devices, pod veths, chains and feeder rules
// (iptables-nft and -legacy, IPv4 and IPv6), ipset, files, a real cgroup2 mount and the configs it set
// aside, beside a Flannel that runs (removed with --cni cilium, Flannel byte for byte), and the other
// way round: a running Cilium (its agent process, or its pidfile) is kept and --cni cilium refuses.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../helpers/agent.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { addCilium, CILIUM_CONFLIST, isMounted, MACVLAN_CONF } from '../helpers/cilium-node.js';
import { thinConf } from '../helpers/multus-node.js';
import { FLANNEL_CONFLIST, inNs, sh, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, snapshot, TestNodes, type NodeState, OWN } from '../helpers/harness.js';

/** A command as the plan script prints it: with several operands after `--`, one per line. */
const script = (cmd: string, ...operands: string[]) =>
  operands.length < 2 ? `${cmd} ${operands.join(' ')}` : [cmd, ...operands.map((o) => `  ${o}`)].join(' \\\n');

const nodes = new TestNodes({ pods: 1, podmanConfig: true });
afterEach(nodes.cleanUp);
const node = (tag: string): FlannelNode => nodes.make(tag);

/** A test that stopped before the run leaves the cgroup2 mount: unmounted before its root goes, never rm -rf into it. */
const unmountAfter = (mount: string) => {
  nodes.onCleanup(() => {
    if (isMounted(mount)) sh('umount', [mount]);
  });
};

const ipsets = (n: FlannelNode) => inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean).sort();
const state = (n: FlannelNode) => {
  const s = snapshot(n);
  return { ...s, files: s.files.filter((f) => !OWN.test(f)), ipsets: ipsets(n) };
};
/** Whether a line of a state is Cilium's: its devices, pods, chains, feeders, set, files and addresses. */
const CILIUM =
  /CILIUM_|cilium-feeder|cilium_(host|net|vxlan|node_set)|lxc[0-9a-f]{12}\b|lxc_health|(^|\/)(var\/)?(run|lib)\/cilium|05-cilium|\.cilium_bak|20-lan\.conf|10\.245\.|fd00:245/;
/** Everything in a state that is not Cilium's (`pods`: the names of its pods' network namespaces). */
const notCilium = (s: NodeState & { ipsets: string[] }, pods: string[]) => {
  const keep = (t: string) =>
    t
      .split('\n')
      .filter((l) => !CILIUM.test(l))
      .join('\n');
  return {
    links: s.links.filter((l) => !CILIUM.test(l)),
    addrs: keep(s.addrs),
    routes4: keep(s.routes4),
    routes6: keep(s.routes6),
    ipt: [s.ipt4nft, s.ipt4legacy, s.ipt6nft, s.ipt6legacy].map(keep),
    nft: s.nft,
    files: s.files.filter((f) => !CILIUM.test(f) && !pods.some((p) => f.startsWith(`run/netns/${p} `))),
    ipsets: s.ipsets.filter((x) => !CILIUM.test(x)),
  };
};

/** The table blocks of one restore batch, in table order (backends list tables in their own order). */
const tableBlocks = (batch: string) =>
  batch
    .trimEnd()
    .split('\n')
    .slice(1, -1)
    .join('\n')
    .split(/\n(?=\*)/)
    .sort();
const feeders: Record<string, Array<[string, string]>> = {
  filter: [
    ['INPUT', 'CILIUM_INPUT'],
    ['FORWARD', 'CILIUM_FORWARD'],
    ['OUTPUT', 'CILIUM_OUTPUT'],
  ],
  mangle: [
    ['PREROUTING', 'CILIUM_PRE_mangle'],
    ['POSTROUTING', 'CILIUM_POST_mangle'],
  ],
  nat: [
    ['PREROUTING', 'CILIUM_PRE_nat'],
    ['OUTPUT', 'CILIUM_OUTPUT_nat'],
    ['POSTROUTING', 'CILIUM_POST_nat'],
  ],
  raw: [
    ['PREROUTING', 'CILIUM_PRE_raw'],
    ['OUTPUT', 'CILIUM_OUTPUT_raw'],
  ],
};
const EXPECTED_BATCH = Object.entries(feeders)
  .map(([table, f]) => {
    const dels = f.map(([b, c]) => `-D ${b} -m comment --comment "cilium-feeder: ${c}" -j ${c}`);
    if (table === 'filter') dels.splice(2, 0, '-D FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j OLD_CILIUM_FORWARD');
    const chains = [...f.map(([, c]) => c), ...(table === 'filter' ? ['OLD_CILIUM_FORWARD'] : [])].sort();
    return [`*${table}`, ...dels, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT'].join('\n');
  })
  .sort();

/** The plan's section of one phase: its header, notes and commands. */
const section = (plan: string, phase: string) => (plan.split('\n\n# == ').find((s) => s.startsWith(`${phase}:`)) ?? '').trimEnd();

describe('Cilium leftovers beside a running Flannel', () => {
  it('--cni cilium: the exact plan, then a run that removes exactly Cilium, puts its set-aside configs back and keeps Flannel byte for byte', async () => {
    const n = node('cilium-rm');
    const c = addCilium(n, { pods: 2 });
    unmountAfter(c.cgroupMount);
    const conf = path.join(n.root, 'etc/cni/net.d');
    fs.writeFileSync(path.join(conf, '10-flannel.conflist.cilium_bak'), FLANNEL_CONFLIST);
    await startAgent(nodes, n.ns, 'flanneld', ['--ip-masq', '--kube-subnet-mgr']);
    const before = state(n);
    expect(isMounted(c.cgroupMount)).toBe(true);

    const plan = runCli(n, ['plan', '--cni', 'cilium', ...nodeArgs(n)]);
    expect(plan.code, plan.stderr).toBe(0);
    const r = n.root;
    expect(section(plan.stdout, 'cni-config')).toBe(
      [
        "cni-config: remove the CNI config files of the CNI (detected by plugin type) from the conf dirs (/etc/cni/net.d; the distribution's)",
        `# removes /etc/cni/net.d/05-cilium.conf.cilium_bak: cilium's config, which cilium set aside: it goes with cilium`,
        `# kept /etc/cni/net.d/10-flannel.conflist.cilium_bak: flannel's config, which cilium set aside; 10-flannel.conflist exists again, so it is not put back over it: compare the two and keep one`,
        `# puts back /etc/cni/net.d/20-lan.conf.cilium_bak: the config of network "lan" (plugins macvlan), which cilium set aside when it took over the node: put back under its name, as cilium's own cleanup does`,
        script('rm -f --', `${r}/etc/cni/net.d/05-cilium.conflist`, `${r}/etc/cni/net.d/05-cilium.conf.cilium_bak`),
        script('mv -n -T --', `${r}/etc/cni/net.d/20-lan.conf.cilium_bak`, `${r}/etc/cni/net.d/20-lan.conf`),
      ].join('\n'),
    );
    expect(section(plan.stdout, 'cni-state')).toBe(
      [
        'cni-state: remove IPAM allocations, result caches and state directories of the CNI',
        '# unmounts /run/cilium/cgroupv2 (a mount point) before /run/cilium is removed',
        script('umount --lazy --', `${r}/run/cilium/cgroupv2`),
        script('rm -rf --', `${r}/var/run/cilium`, `${r}/run/cilium`, `${r}/var/lib/cilium`),
      ].join('\n'),
    );
    // One batch: the pair, the overlay, the pod veths and the health endpoint's (lxcfoo and lxcbr0 stay).
    expect(section(plan.stdout, 'interfaces')).toBe(
      [
        "interfaces: delete the CNI's interfaces (bridge, overlay devices, pod veths)",
        // Once bpf has taken the programs off the devices; Cilium's state files go meanwhile.
        '# a run starts it once cni-config and bpf have ended, beside cni-state: it changes none of what they change',
        '# the links go into one unused link group that is then deleted at once: one teardown, not one per veth',
        "ip -batch - <<'CNI_SWEEP_EOF'",
        ...['cilium_net', 'cilium_host', 'cilium_vxlan', ...c.veths].map((l) => `link set dev ${l} group 4242424`),
        'link delete group 4242424',
        'CNI_SWEEP_EOF',
      ].join('\n'),
    );
    // Per backend and family: the feeder jumps deleted from the built-in chains, then Cilium's chains
    // flushed and deleted; the site's rule that mentions Cilium stays. The ipset goes after the rules.
    const fw = section(plan.stdout, 'firewall').split('\n');
    expect(fw[0]).toBe("firewall: delete the CNI's iptables/ip6tables rules and chains on every backend, and its nftables tables");
    const batches = fw
      .join('\n')
      .split(/^(?=\S+-restore --noflush -w|ipset restore)/m)
      .slice(1);
    expect(batches.map((b) => b.split('\n')[0])).toEqual([
      ...['iptables-nft', 'iptables-legacy', 'ip6tables-nft', 'ip6tables-legacy'].map((b) => `${b}-restore --noflush -w <<'CNI_SWEEP_EOF'`),
      "ipset restore <<'CNI_SWEEP_EOF'",
    ]);
    for (const b of batches.slice(0, 4)) expect(tableBlocks(b)).toEqual(EXPECTED_BATCH);
    expect(batches[4]!.trimEnd()).toBe("ipset restore <<'CNI_SWEEP_EOF'\ndestroy cilium_node_set_v4\nCNI_SWEEP_EOF");
    expect(plan.stdout).toContain(`#   remove cilium: named with --cni; pods use it now`);
    expect(plan.stdout).not.toMatch(/^[^#].*(flannel|cni0|FLANNEL|lxcfoo|lxcbr0|podman|site: cilium)/m);

    const run = runCli(n, ['run', '--yes', '--cni', 'cilium', ...nodeArgs(n)]);
    expect(run.code, run.stderr).toBe(0);
    const after = state(n);
    expect(notCilium(after, c.netns)).toEqual(notCilium(before, c.netns));
    expect(isMounted(c.cgroupMount)).toBe(false);
    expect(after.links.filter((l) => CILIUM.test(l))).toEqual([]);
    expect([after.ipt4nft, after.ipt4legacy, after.ipt6nft, after.ipt6legacy].join('\n')).not.toMatch(/CILIUM|cilium-feeder/);
    for (const t of [after.ipt4nft, after.ipt4legacy])
      expect(t).toContain('-A FORWARD -s 10.9.0.0/16 -m comment --comment "site: cilium lab" -j ACCEPT');
    expect(after.ipsets).not.toContain('cilium_node_set_v4');
    expect(after.routes4).not.toMatch(/10\.245\./);
    expect(after.files.filter((f) => CILIUM.test(f))).toEqual([
      `etc/cni/net.d/10-flannel.conflist.cilium_bak 644 ${JSON.stringify(FLANNEL_CONFLIST)}`,
      `etc/cni/net.d/20-lan.conf 644 ${JSON.stringify(MACVLAN_CONF)}`,
      `etc/cni/net.d/README.cilium_bak 644 ${JSON.stringify('not a CNI config\n')}`,
    ]);
    // Cilium's pods' namespaces are gone; Flannel's pod keeps its own.
    for (const ns of c.netns) expect(fs.existsSync(path.join(n.root, 'run/netns', ns))).toBe(false);
    for (const p of n.pods) expect(fs.existsSync(path.join(n.root, 'run/netns', p.netns))).toBe(true);

    // A second run finds nothing of Cilium's left to change.
    const again = runCli(n, ['run', '--yes', '--json', '--cni', 'cilium', ...nodeArgs(n)]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changed).toBe(false);
  });
});

/** Everything of Cilium's in a state. */
const ciliumOnly = (s: NodeState & { ipsets: string[] }, pods: string[]) => {
  const mine = (t: string) =>
    t
      .split('\n')
      .filter((l) => CILIUM.test(l))
      .join('\n');
  return {
    links: s.links.filter((l) => CILIUM.test(l)),
    addrs: mine(s.addrs),
    routes4: mine(s.routes4),
    ipt: [s.ipt4nft, s.ipt4legacy, s.ipt6nft, s.ipt6legacy].map(mine),
    files: s.files.filter((f) => CILIUM.test(f) || pods.some((p) => f.startsWith(`run/netns/${p} `))),
    ipsets: s.ipsets.filter((x) => CILIUM.test(x)),
  };
};

describe('configs Cilium set aside, on a node that runs another CNI since', () => {
  // Calico, then Cilium (which set Calico's config and Multus's aside), then Flannel: putting them
  // back would make the runtime load them instead of Flannel's, or hand every pod to the Cilium removed.
  it("--cni cilium leaves them set aside, says why, and the runtime still loads the running Flannel's config", async () => {
    const n = node('cilium-aside');
    addCilium(n, { pods: 1, mount: false });
    const conf = path.join(n.root, 'etc/cni/net.d');
    fs.writeFileSync(path.join(conf, '10-calico.conflist.cilium_bak'), CALICO_CONFLIST);
    fs.writeFileSync(path.join(conf, '00-multus.conf.cilium_bak'), thinConf(CILIUM_CONFLIST));
    await startAgent(nodes, n.ns, 'flanneld', ['--ip-masq', '--kube-subnet-mgr']);
    const plan = runCli(n, ['plan', '--cni', 'cilium', ...nodeArgs(n)]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(
      "# kept /etc/cni/net.d/00-multus.conf.cilium_bak: multus's config, which cilium set aside, hands pods to cilium (its first delegate, embedded in it), which this run removes: put back, every new pod would fail in Multus, so it stays set aside\n",
    );
    expect(plan.stdout).toContain(
      "# kept /etc/cni/net.d/10-calico.conflist.cilium_bak: calico's config, which cilium set aside; put back as 10-calico.conflist, it would sort before /etc/cni/net.d/10-flannel.conflist (flannel's config), which stays, and the runtime would load it instead: it stays set aside (rename it back by hand if that is the network you want)\n",
    );
    const r = runCli(n, ['run', '--yes', '--cni', 'cilium', ...nodeArgs(n)]);
    expect(r.code, r.stderr).toBe(0);
    const left = fs
      .readdirSync(conf)
      .filter((f) => /\.(conf|conflist|json)$/.test(f))
      .sort();
    expect(left[0]).toBe('10-flannel.conflist');
    expect(fs.readFileSync(path.join(conf, '10-calico.conflist.cilium_bak'), 'utf8')).toBe(CALICO_CONFLIST);
    expect(fs.readFileSync(path.join(conf, '00-multus.conf.cilium_bak'), 'utf8')).toBe(thinConf(CILIUM_CONFLIST));
  });
});

describe('a running Cilium beside Flannel leftovers', () => {
  it('without --cni: Cilium is kept byte for byte (its agent runs) and Flannel goes; --cni cilium refuses with exit 3', async () => {
    const n = node('cilium-live');
    // No cgroup2 mount here: the state walk compares every file under the root.
    const c = addCilium(n, { pods: 1, mount: false });
    const pid = await startAgent(nodes, n.ns, 'cilium-agent', ['--config-dir=/tmp/cilium/config-map']);
    const before = state(n);

    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`#   keep cilium: live: its agent runs: cilium-agent (pid ${pid})\n`);
    expect(plan.stdout).toContain('#   remove flannel: leftovers: no agent of it runs and the runtime does not use its config\n');
    expect(plan.stdout.replaceAll(path.dirname(n.root), '<tmp>')).not.toMatch(/^[^#].*(cilium|CILIUM|lxc)/m);

    const run = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).cni).toEqual(['flannel']);
    const after = state(n);
    expect(ciliumOnly(after, c.netns)).toEqual(ciliumOnly(before, c.netns));
    expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1) /m);
    expect(after.ipt4nft).not.toMatch(/FLANNEL|flanneld/);
    expect(fs.existsSync(path.join(n.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);

    const now = state(n);
    for (const cmd of ['plan', 'run']) {
      const r = runCli(n, [cmd, ...(cmd === 'run' ? ['--yes'] : []), '--cni', 'cilium', ...nodeArgs(n)]);
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `cni-sweep: error: --cni cilium: cilium is live on this node: its agent runs: cilium-agent (pid ${pid}); cni-sweep never removes a live CNI\n` +
          '  hint: stop it for good first, by deleting its DaemonSet (helm uninstall cilium -n kube-system (cilium CLI installs: cilium uninstall; manifests: kubectl -n kube-system delete daemonset cilium)), wait for its pods to go, then run again\n',
      );
    }
    expect(state(n)).toEqual(now);
  });

  it('its pidfile naming a running process makes it live, whatever the process is called; a stale pidfile does not', async () => {
    const n = node('cilium-pid');
    addCilium(n, { pods: 1, mount: false });
    // The agent as a container runtime shows it to the host: a process whose name says nothing.
    const pid = await startAgent(nodes, n.ns, 'agent-x');
    fs.writeFileSync(path.join(n.root, 'var/run/cilium/cilium.pid'), `${pid}\n`);
    const before = state(n);
    const r = runCli(n, ['plan', '--cni', 'cilium', ...nodeArgs(n)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `cni-sweep: error: --cni cilium: cilium is live on this node: its pidfile /var/run/cilium/cilium.pid names agent-x (pid ${pid}), which runs; cni-sweep never removes a live CNI\n` +
        '  hint: stop it for good first (helm uninstall cilium -n kube-system (cilium CLI installs: cilium uninstall; manifests: kubectl -n kube-system delete daemonset cilium)), wait for its pods to go, then run again\n',
    );
    const plan = runCli(n, ['plan', ...nodeArgs(n)]);
    expect(plan.stdout).toContain(
      `#   keep cilium: live: its pidfile /var/run/cilium/cilium.pid names agent-x (pid ${pid}), which runs; stop it for good first`,
    );
    expect(state(n)).toEqual(before);

    // The same pid in another network namespace is not this node's agent.
    const other = `${n.ns.slice(0, 34)}-other`;
    sh('ip', ['netns', 'add', other]);
    try {
      const elsewhere = await startAgent(nodes, other, 'agent-y');
      fs.writeFileSync(path.join(n.root, 'var/run/cilium/cilium.pid'), `${elsewhere}\n`);
      const ok = runCli(n, ['plan', '--json', '--cni', 'cilium', ...nodeArgs(n)]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout).targets).toEqual([
        {
          cni: 'cilium',
          action: 'remove',
          why: "named with --cni; pods use it now: /etc/cni/net.d/05-cilium.conflist is the runtime's config, so new pods get no network until another CNI is installed",
        },
      ]);
    } finally {
      sh('ip', ['netns', 'delete', other]);
    }
  });
});
