// The migration matrix, on real kernel state: each of Flannel, Calico, Cilium and kube-router left
// behind beside each other one running (its agent process present in the node's network namespace),
// one network namespace and temporary root per case. A run removes exactly the dead CNI's links,
// routes, ip rules, chains, ipsets, nftables tables and files; the live CNI comes through byte for
// byte, and so does everything else on the node; a second run changes nothing. Also Multus in front
// of Calico or Flannel, its config going with the CNI it delegates to.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../helpers/agent.js';
import { addCalico, CALICO_CONFLIST } from '../helpers/calico-node.js';
import { addCilium, isMounted, MACVLAN_CONF } from '../helpers/cilium-node.js';
import { FLANNEL_CONFLIST, inNs, sh, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, snapshot, TestNodes, OWN } from '../helpers/harness.js';
import { addKubeRouter, KR_SETS, RT_TABLES_SITE } from '../helpers/kube-router-node.js';
import { addMultus, thinConf } from '../helpers/multus-node.js';

const nodes = new TestNodes({ pods: 1 });
afterEach(nodes.cleanUp);

type Cni = 'flannel' | 'calico' | 'cilium' | 'kube-router';
const CNIS: Cni[] = ['flannel', 'calico', 'cilium', 'kube-router'];

/** Each CNI's agent as its DaemonSet runs it in the host network. */
const AGENTS: Record<Cni, [string, ...string[]]> = {
  flannel: ['flanneld', '--ip-masq', '--kube-subnet-mgr'],
  calico: ['calico-node', '-felix'],
  cilium: ['cilium-agent', '--config-dir=/tmp/cilium/config-map'],
  'kube-router': ['kube-router', '--run-router=true', '--run-firewall=true'],
};

interface Migration {
  node: FlannelNode;
  /** The names of each CNI's pods' network namespaces (files under <root>/run/netns). */
  pods: Record<Cni, string[]>;
}

/**
 * A node holding the state of `cnis`. kube-router's config is 00-kuberouter.conflist when it is the
 * live one (the runtime's config, as the new CNI's is after a migration), its pods on 10.246.0.0/16
 * (Cilium's are on 10.245.0.0/16). Cilium's cgroup mount is made only when it is the one removed.
 */
function build(tag: string, cnis: Cni[], live: Cni): Migration {
  const node = nodes.make(tag, { flannel: cnis.includes('flannel') });
  const pods: Record<Cni, string[]> = { flannel: node.pods.map((p) => p.netns), calico: [], cilium: [], 'kube-router': [] };
  if (cnis.includes('calico')) pods.calico = addCalico(node, { pods: 1 }).pods.map((p) => p.netns);
  if (cnis.includes('cilium')) {
    const c = addCilium(node, { pods: 1, mount: false, policyRouting: true });
    if (live !== 'cilium') {
      // A tmpfs stands in for its cgroup2 mount, which would show the whole machine's cgroups, changing
      // as other tests run; the run unmounts whatever is mounted there the same way.
      sh('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=755', 'cilium-cgroup', c.cgroupMount]);
      nodes.onCleanup(() => {
        if (isMounted(c.cgroupMount)) sh('umount', [c.cgroupMount]);
      });
    }
    pods.cilium = c.netns;
  }
  if (cnis.includes('kube-router'))
    pods['kube-router'] = addKubeRouter(node, {
      conf: live === 'kube-router' ? '00-kuberouter.conflist' : '10-kuberouter.conflist',
      octet: 246,
    }).netns;
  return { node, pods };
}

/** `ip` output as lines, without the link-local and multicast routes the kernel adds as links come and go. */
const ipLines = (ns: string, args: string[]) =>
  inNs(ns, 'ip', args)
    .replace(/ linkdown/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/fe80:|ff00::\/8/.test(l));

/** Everything a run may change, as lists of lines. */
function state(n: FlannelNode) {
  const s = snapshot(n);
  return {
    links: s.links,
    addrs: s.addrs.split('\n'),
    routes: [...ipLines(n.ns, ['-4', 'route', 'show', 'table', 'all']), ...ipLines(n.ns, ['-6', 'route', 'show', 'table', 'all'])].sort(),
    rules: [...ipLines(n.ns, ['-4', 'rule', 'show']).map((l) => `4 ${l}`), ...ipLines(n.ns, ['-6', 'rule', 'show']).map((l) => `6 ${l}`)],
    ipt4nft: s.ipt4nft.split('\n'),
    ipt4legacy: s.ipt4legacy.split('\n'),
    ipt6nft: s.ipt6nft.split('\n'),
    ipt6legacy: s.ipt6legacy.split('\n'),
    nft: s.nft ? s.nft.split(/\n(?=table )/) : [],
    files: s.files.filter((f) => !OWN.test(f)),
    ipsets: inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean).sort(),
  };
}
type State = ReturnType<typeof state>;
type Kind = keyof State;
const IPT = ['ipt4nft', 'ipt4legacy', 'ipt6nft', 'ipt6legacy'] as const;

/** What each CNI's fixture makes, by the shapes its helper writes them in. */
const OWNS: Record<
  Cni,
  {
    links: RegExp;
    bridge?: string;
    routes?: RegExp;
    rules?: RegExp;
    ipt?: RegExp;
    nft?: RegExp;
    files: RegExp;
    ipsets?: RegExp;
  }
> = {
  flannel: {
    links: /^(cni0|flannel\.1)$/,
    bridge: 'cni0',
    // Host-gw routes to other nodes' leases go via the uplink.
    routes: /^(10\.244\.|fd00:10:244:)/,
    ipt: /FLANNEL|flanneld|cbr0|CNI-[0-9a-f]{24}|CNI-DN-[0-9a-f]{21}/,
    nft: /^table ip flannel-ipv4 /,
    files:
      /^(etc\/cni\/net\.d\/10-flannel\.conflist(\.cilium_bak)? |run\/flannel[/ ]|var\/lib\/cni\/(flannel|networks\/cbr0)[/ ]|var\/lib\/cni\/results\/cbr0-)/,
  },
  calico: {
    links: /^(cali[0-9a-f]{11}|vxlan\.calico)$/,
    // BIRD's routes to other nodes and its IPAM blackholes, felix's.
    routes: /172\.20\./,
    ipt: /cali/,
    nft: /^table ip calico /,
    files:
      /^(etc\/cni\/net\.d\/(10-calico\.conflist(\.cilium_bak)?|calico-kubeconfig) |var\/(lib|run|log)\/calico[/ ]|var\/lib\/cni\/results\/k8s-pod-network-)/,
    ipsets: /^cali40/,
  },
  cilium: {
    links: /^(cilium_host|cilium_net|cilium_vxlan|lxc[0-9a-f]{12}|lxc_health)$/,
    routes: /table 200[45]\b/,
    rules: /lookup 200[45]\b/,
    ipt: /CILIUM_|cilium-feeder/,
    // 20-lan.conf: another network's config Cilium set aside, put back when Cilium goes.
    files:
      /^(etc\/cni\/net\.d\/(05-cilium\.conflist|05-cilium\.conf\.cilium_bak|20-lan\.conf\.cilium_bak|20-lan\.conf) |(var\/)?run\/cilium[/ ]|var\/lib\/cilium[/ ])/,
    ipsets: /^cilium_node_set_v4$/,
  },
  'kube-router': {
    links: /^(kube-bridge|tun-[0-9a-f]{11})$/,
    bridge: 'kube-bridge',
    routes: /proto 17|table 7[789]\b/,
    rules: /lookup 7[789]\b/,
    ipt: /KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-|kube-router|kube-bridge|allow outbound node port/,
    nft: /kube-router-filter-ipv[46]/,
    // rt_tables holds its three lines among the site's.
    files:
      /^(etc\/cni\/net\.d\/\d\d-kuberouter\.conflist(\.cilium_bak)? |var\/lib\/kube-router[/ ]|var\/lib\/cni\/networks\/mynet[/ ]|etc\/iproute2\/rt_tables )/,
    ipsets: KR_SETS,
  },
};
/** portmap's chains, shared by every config that uses portmap: Flannel's, Calico's, podman's (beside kube-router). */
const PORTMAP = /CNI-HOSTPORT-|CNI portfwd/;

/** Whether a line of kind `kind` in state `s` is `cni`'s. */
function ownedBy(s: State, cni: Cni, pods: string[]): (kind: Kind, line: string) => boolean {
  const o = OWNS[cni];
  const links = new Set(
    s.links.filter((l) => o.links.test(l.split(' ')[0]!) || (o.bridge && l.includes(` master=${o.bridge} `))).map((l) => l.split(' ')[0]!),
  );
  const test = (re: RegExp | undefined, line: string) => re?.test(line) ?? false;
  return (kind, line) => {
    switch (kind) {
      case 'links':
      case 'addrs':
        return links.has(line.split(' ')[0]!);
      case 'routes':
        return links.has(/ dev (\S+)/.exec(line)?.[1] ?? '') || test(o.routes, line);
      case 'rules':
        return test(o.rules, line);
      case 'nft':
        return test(o.nft, line);
      case 'files':
        return o.files.test(line) || pods.some((p) => line.startsWith(`run/netns/${p} `));
      case 'ipsets':
        return test(o.ipsets, line);
      default:
        return test(o.ipt, line);
    }
  };
}

const KINDS = (s: State) => Object.keys(s) as Kind[];
/** The lines of `s` that `keep` keeps, per kind. */
const select = (s: State, keep: (kind: Kind, line: string) => boolean) =>
  Object.fromEntries(KINDS(s).map((k) => [k, s[k].filter((l) => keep(k, l))])) as State;
/** Everything of `cni`'s in a state. */
const only = (s: State, m: Migration, cni: Cni) => select(s, ownedBy(s, cni, m.pods[cni]));

const EMPTY: State = {
  links: [],
  addrs: [],
  routes: [],
  rules: [],
  ipt4nft: [],
  ipt4legacy: [],
  ipt6nft: [],
  ipt6legacy: [],
  nft: [],
  files: [],
  ipsets: [],
};
/** What is left of a removed CNI's: the set-aside config Cilium's removal puts back, the site's rt_tables lines. */
const LEFT: Record<Cni, State> = {
  flannel: EMPTY,
  calico: EMPTY,
  cilium: { ...EMPTY, files: [`etc/cni/net.d/20-lan.conf 644 ${JSON.stringify(MACVLAN_CONF)}`] },
  'kube-router': { ...EMPTY, files: [`etc/iproute2/rt_tables 644 ${JSON.stringify(RT_TABLES_SITE)}`] },
};

interface Case {
  /** The first run has no --cni: it must tell the dead CNI from the live one itself. The second has --cni. */
  plain?: boolean;
  /** 00-multus.conf in front of the removed CNI, embedding its conflist: it goes with it. */
  multus?: string;
  /** The live Cilium has set the other configs aside (cni.exclusive, its default): <name>.cilium_bak. */
  exclusive?: boolean;
}

/** Removes `removed` beside the running `live` and checks the node: see the top of the file. */
async function migrate(removed: Cni, live: Cni, c: Case = {}) {
  const m = build(`mx-${removed.slice(0, 4)}-${live.slice(0, 4)}${c.multus ? '-mu' : ''}`, [removed, live], live);
  const n = m.node;
  if (c.multus) addMultus(n, thinConf(c.multus));
  if (c.exclusive) {
    const dir = path.join(n.root, 'etc/cni/net.d');
    for (const f of fs.readdirSync(dir).filter((x) => /\.(conf|conflist|json)$/.test(x) && x !== '05-cilium.conflist'))
      fs.renameSync(path.join(dir, f), path.join(dir, `${f}.cilium_bak`));
  }
  const [agent, ...agentArgs] = AGENTS[live];
  const pid = await startAgent(nodes, n.ns, agent, agentArgs);
  const before = state(n);
  // Both CNIs are on the node in every kind their fixtures make: a check of the fixture, so that
  // the comparisons below cannot pass on a node without them.
  for (const cni of [removed, live]) {
    const mine = only(before, m, cni);
    for (const k of ['links', 'routes', 'ipt4nft', 'files'] as const) expect(mine[k].length, `${cni} ${k}`).toBeGreaterThan(0);
  }
  if (c.multus) expect(before.files.filter((f) => /^etc\/cni\/net\.d\/00-multus\.conf /.test(f))).toHaveLength(1);
  const gone = (s: State) => {
    const r = ownedBy(s, removed, m.pods[removed]);
    return (k: Kind, l: string) => r(k, l) || (k === 'files' && !!c.multus && l.startsWith('etc/cni/net.d/00-multus.conf '));
  };
  const rest = (s: State) => {
    const g = gone(s);
    // portmap's chains go with Flannel only when no config left uses portmap (beside Cilium).
    return select(s, (k, l) => !g(k, l) && !(removed === 'flannel' && PORTMAP.test(l)));
  };

  const withCni = ['run', '--yes', '--json', '--cni', removed, ...nodeArgs(n)];
  const r = runCli(n, c.plain ? withCni.filter((a) => a !== '--cni' && a !== removed) : withCni);
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as { cni: string[]; changed: boolean; targets: unknown[] };
  expect(report.cni).toEqual([removed]);
  expect(report.changed).toBe(true);
  if (c.plain) expect(report.targets).toContainEqual({ cni: live, action: 'keep', why: `live: its agent runs: ${agent} (pid ${pid})` });
  const after = state(n);

  // The live CNI, byte for byte; nothing of the removed one's left; the rest of the node as it was.
  expect(only(after, m, live)).toEqual(only(before, m, live));
  expect(select(after, gone(after))).toEqual(LEFT[removed]);
  expect(rest(after)).toEqual(rest(before));
  if (removed === 'flannel') {
    const portmap = (s: State) => IPT.map((k) => s[k].filter((l) => PORTMAP.test(l) && !OWNS.flannel.ipt!.test(l)));
    expect(portmap(before)[0]!.length).toBeGreaterThan(0);
    expect(portmap(after)).toEqual(live === 'cilium' ? [[], [], [], []] : portmap(before));
  }
  // Its pods' namespaces are gone, the live one's stay.
  for (const p of m.pods[removed]) expect(fs.existsSync(path.join(n.root, 'run/netns', p)), p).toBe(false);
  for (const p of m.pods[live]) expect(fs.existsSync(path.join(n.root, 'run/netns', p)), p).toBe(true);

  const again = runCli(n, withCni);
  expect(again.code, again.stderr).toBe(0);
  expect((JSON.parse(again.stdout) as { changed: boolean }).changed).toBe(false);
}

/** Whether the live CNI's config comes first (the runtime's), as a plain run needs to tell which one is the node's. */
const liveFirst = (removed: Cni, live: Cni) => {
  const conf: Record<Cni, string> = {
    flannel: '10-flannel.conflist',
    calico: '10-calico.conflist',
    cilium: '05-cilium.conflist',
    'kube-router': live === 'kube-router' ? '00-kuberouter.conflist' : '10-kuberouter.conflist',
  };
  return conf[live] < conf[removed];
};

// Without --cni, the first run must keep the live CNI itself: one pair per live CNI, each where the
// live CNI's config is the runtime's (the first), as the new CNI's is after a migration.
const PLAIN = ['kube-router/flannel', 'flannel/calico', 'calico/cilium', 'cilium/kube-router'];

describe('the migration matrix: each CNI removed beside each other one running', () => {
  for (const removed of CNIS)
    for (const live of CNIS.filter((x) => x !== removed)) {
      const plain = PLAIN.includes(`${removed}/${live}`);
      // A running Cilium has set the other configs aside, as it does by default.
      const exclusive = live === 'cilium';
      const how = `${plain ? 'run (no --cni), then --cni' : '--cni'} ${removed} with ${live} running${exclusive ? ' (configs set aside)' : ''}`;
      it(`${how}: ${removed} gone, ${live} and the rest byte for byte`, async () => {
        if (plain) expect(liveFirst(removed, live)).toBe(true);
        await migrate(removed, live, { plain, exclusive });
      });
    }
});

describe('Multus in front of the removed CNI', () => {
  it("--cni calico with Flannel running: 00-multus.conf (Calico embedded) goes with Calico; Flannel and Multus's other files byte for byte", async () => {
    await migrate('calico', 'flannel', { multus: CALICO_CONFLIST });
  });

  it("--cni flannel with Calico running: 00-multus.conf (Flannel embedded) goes with Flannel; Calico and Multus's other files byte for byte", async () => {
    await migrate('flannel', 'calico', { multus: FLANNEL_CONFLIST });
  });
});
