// kube-router as a removal target, on real kernel state: kube-bridge with pod veths, a tun-<hex>
// tunnel (a vxlan link under that name: this kernel has no ipip), proto 17 routes, ip rules to tables
// 77-79 beside a site's own rule and table, iproute2's rt_tables with the site's lines, KUBE-ROUTER-*,
// KUBE-NWPLCY-*, KUBE-POD-FW-* chains beside kube-proxy's whole KUBE-* chain set in iptables-nft and
// iptables-legacy, its ipsets and nftables tables, and podman's bridge config, which is not kube-router's.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../helpers/agent.js';
import { inNs, PODMAN_CONFLIST, sh, type FlannelNode } from '../helpers/flannel-node.js';
import { addKubeRouter, KR_SETS, RT_TABLES, RT_TABLES_SITE } from '../helpers/kube-router-node.js';
import { cliEnv, nodeArgs, runCli, snapshot, TestNodes, OWN } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 1 });
afterEach(nodes.cleanUp);

function node(tag: string, flannel: boolean): FlannelNode {
  const n = nodes.make(tag, { flannel });
  // Beside Flannel's 10-flannel.conflist, kube-router's must come first to be the one pods use (00-, as some deployments name it).
  addKubeRouter(n, { conf: flannel ? '00-kuberouter.conflist' : '10-kuberouter.conflist' });
  return n;
}

const lines = (ns: string, argv: string[]) =>
  inNs(ns, argv[0]!, argv.slice(1))
    .replace(/ linkdown/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^local fe80:|^fe80::|^multicast ff00::/.test(l));
const ipsets = (n: FlannelNode) => inNs(n.ns, 'ipset', ['list', '-n']).split('\n').filter(Boolean).sort();
/** Everything a run may change, in one comparable value. */
const state = (n: FlannelNode) => {
  const s = snapshot(n);
  return {
    ...s,
    files: s.files.filter((f) => !OWN.test(f)),
    ipsets: ipsets(n),
    rules4: lines(n.ns, ['ip', '-4', 'rule', 'show']),
    rules6: lines(n.ns, ['ip', '-6', 'rule', 'show']),
    routesAll4: lines(n.ns, ['ip', '-4', 'route', 'show', 'table', 'all']).sort(),
    routesAll6: lines(n.ns, ['ip', '-6', 'route', 'show', 'table', 'all']).sort(),
  };
};
type State = ReturnType<typeof state>;
const KR_CHAIN = /KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-|kube-router|kube-bridge|allow outbound node port/;
/** Everything of kube-router's in a state. */
const kubeRouterOnly = (s: State) => ({
  links: s.links.filter((l) => /^(kube-bridge|vethkr|tun-)/.test(l) || / master=kube-bridge /.test(l)),
  addrs: s.addrs.split('\n').filter((l) => /^kube-bridge/.test(l)),
  routes: [...s.routesAll4, ...s.routesAll6].filter((l) => /proto 17|table (77|78|79)|kube-bridge|tun-/.test(l)),
  rules: [...s.rules4, ...s.rules6].filter((l) => /lookup (77|78|79|kube-router|external_ip)/.test(l)),
  fw: [s.ipt4nft, s.ipt4legacy, s.ipt6nft].map((t) => t.split('\n').filter((l) => KR_CHAIN.test(l))),
  nft: s.nft.split(/\n(?=table )/).filter((t) => /kube-router/.test(t)),
  files: s.files.filter((f) => /kuberouter|kube-router|mynet|rt_tables/.test(f)),
  ipsets: s.ipsets.filter((x) => KR_SETS.test(x)),
});
// What the routes phase plans: the uplink route learnt over BGP (the tunnel's go with the tunnel), the
// rules to 77-79 (not the site's at 32765 to table 100), table 78 (77's and 79's routes go with their
// devices), and kube-router's three rt_tables lines.
const ROUTES_PLAN = `
# == routes: delete the CNI's remaining routes (host-gw routes to other nodes' leases, its routing protocols' routes), its ip rules, routing tables and rt_tables entries
ip -batch - <<'CNI_SWEEP_EOF'
route delete 10.245.2.0/24 via 192.168.1.12 dev eth0
CNI_SWEEP_EOF
ip -4 -batch - <<'CNI_SWEEP_EOF'
rule del priority 32764 fwmark 0x3e8 table 78
rule del priority 32765 from 10.245.1.0/24 table 77
rule del priority 32765 table 79
CNI_SWEEP_EOF
ip -4 -batch - <<'CNI_SWEEP_EOF'
route flush table 78
CNI_SWEEP_EOF
ip -6 -batch - <<'CNI_SWEEP_EOF'
rule del priority 32765 from fd00:10:245:1::/64 table 77
rule del priority 32765 table 79
CNI_SWEEP_EOF
ip -6 -batch - <<'CNI_SWEEP_EOF'
route flush table 78
CNI_SWEEP_EOF
sed -i -E -e '/^[[:space:]]*77[[:space:]]+kube-router[[:space:]]*$/d' -e '/^[[:space:]]*78[[:space:]]+kube-router-dsr[[:space:]]*$/d' -e '/^[[:space:]]*79[[:space:]]+external_ip[[:space:]]*$/d' -- <root>/etc/iproute2/rt_tables
`;
const KUBE_PROXY = (t: string) => t.split('\n').filter((l) => /KUBE-/.test(l) && !KR_CHAIN.test(l));

describe('--cni kube-router', () => {
  it("removes exactly kube-router's state: kube-proxy's KUBE-* chains, podman's config, the site's rules, table and rt_tables lines stay", () => {
    const n = node('kr-remove', false);
    const before = state(n);
    // Everything was built: a check of the fixture, so the assertions below cannot pass on an empty node.
    expect(kubeRouterOnly(before).rules).toHaveLength(5);
    expect(kubeRouterOnly(before).fw.every((t) => t.length >= 12)).toBe(true);
    expect(before.ipsets.filter((x) => KR_SETS.test(x))).toHaveLength(8);

    const r = runCli(n, ['run', '--yes', '--json', '--cni', 'kube-router', ...nodeArgs(n)]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const after = state(n);

    // Nothing of kube-router is left.
    expect(kubeRouterOnly(after)).toEqual({
      links: [],
      addrs: [],
      routes: [],
      rules: [],
      fw: [[], [], []],
      nft: [],
      files: [`etc/iproute2/rt_tables 644 ${JSON.stringify(RT_TABLES_SITE)}`],
      ipsets: [],
    });
    // The rest of rt_tables is byte for byte what it was: the site's "200 external_ip" is not kube-router's (79).
    expect(fs.readFileSync(path.join(n.root, 'etc/iproute2/rt_tables'), 'utf8')).toBe(RT_TABLES_SITE);
    // kube-proxy's and kubelet's chains, every one, on both backends.
    for (const k of ['ipt4nft', 'ipt4legacy'] as const) {
      expect(KUBE_PROXY(after[k])).toEqual(KUBE_PROXY(before[k]));
      expect(KUBE_PROXY(after[k]).length).toBeGreaterThan(30);
    }
    // The site's policy routing, the foreign ipsets, nftables table, links and files.
    expect(after.rules4).toEqual([
      '0:\tfrom all lookup local',
      '1000:\tfrom all to 10.60.0.0/16 lookup 100',
      '32765:\tfrom 10.50.0.0/16 lookup 100',
      '32766:\tfrom all lookup main',
      '32767:\tfrom all lookup default',
    ]);
    expect(after.routesAll4).toContain('10.50.0.0/16 via 192.168.1.1 dev eth0 table 100');
    expect(after.ipsets).toEqual(['KUBE-CLUSTER-IP', 'site-allow']);
    expect(after.nft).toBe(
      before.nft
        .split(/\n(?=table )/)
        .filter((t) => !/kube-router/.test(t))
        .join('\n'),
    );
    const notKr = (s: State) => ({
      links: s.links.filter((l) => !kubeRouterOnly(s).links.includes(l)),
      routes: s.routesAll4.filter((l) => !/proto 17|table (77|78|79)|kube-bridge|tun-|10\.245\.1\./.test(l)),
      files: s.files.filter((f) => !/kuberouter|kube-router|mynet|rt_tables|run\/netns/.test(f)),
    });
    expect(notKr(after)).toEqual(notKr(before));
    expect(after.files).toContain(`etc/cni/net.d/87-podman-bridge.conflist 644 ${JSON.stringify(PODMAN_CONFLIST)}`);

    // The backup keeps rt_tables as it was, and the listings of the flushed table's routes.
    const report = JSON.parse(r.stdout);
    const tar = sh('tar', ['-xOf', path.join(report.backup, 'files.tar'), 'etc/iproute2/rt_tables']);
    expect(tar).toBe(RT_TABLES);
    expect(report.removed.routes.names).toEqual([
      '10.245.2.0/24 via 192.168.1.12 dev eth0',
      'local default dev lo table 78',
      'local default dev lo table 78 metric 1024',
    ]);

    // A second run finds nothing.
    const again = runCli(n, ['run', '--yes', '--json', '--cni', 'kube-router', ...nodeArgs(n)]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).changed).toBe(false);
  });

  it('restore after --cni kube-router recreates its ipsets (IPv4 and inet6:) with their members before the rules that match them', () => {
    const n = node('kr-restore', false);
    const before = state(n);
    const saved = (name: string) => inNs(n.ns, 'ipset', ['save', name]);
    const members = before.ipsets.filter((x) => KR_SETS.test(x)).map(saved);
    const run = runCli(n, ['run', '--yes', '--json', '--cni', 'kube-router', ...nodeArgs(n)]);
    expect(run.code).toBe(0);
    expect(kubeRouterOnly(state(n)).ipsets).toEqual([]);
    const r = runCli(n, ['restore', JSON.parse(run.stdout).backup, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).restored).toMatchObject({ ipsets: 8 });
    const after = state(n);
    expect(after.ipsets).toEqual(before.ipsets);
    expect(after.ipsets.filter((x) => KR_SETS.test(x)).map(saved)).toEqual(members);
    expect(kubeRouterOnly(after).fw).toEqual(kubeRouterOnly(before).fw);
  });

  it('the plan shows the exact policy-routing commands, and bash running it reaches the same node state as run', () => {
    const a = node('kr-plan-a', false);
    const b = node('kr-plan-b', false);
    const plan = runCli(b, ['plan', '--cni', 'kube-router', ...nodeArgs(b)]);
    expect(plan.code).toBe(0);
    const block = plan.stdout.slice(plan.stdout.indexOf('\n# == routes'), plan.stdout.indexOf('\n# == firewall'));
    expect(block.replaceAll(b.root, '<root>')).toBe(ROUTES_PLAN);
    const script = path.join(b.root, '..', 'plan.sh');
    fs.writeFileSync(script, plan.stdout);
    execFileSync('nsenter', [`--net=/run/netns/${b.ns}`, 'bash', script], { env: cliEnv(b), stdio: 'pipe' });
    expect(runCli(a, ['run', '--yes', '--cni', 'kube-router', ...nodeArgs(a)]).code).toBe(0);
    const nodeOnly = (s: State) => ({ ...s, files: s.files.filter((f) => !/^run\/netns/.test(f)) });
    expect(nodeOnly(state(b))).toEqual(nodeOnly(state(a)));
  });
});

describe('a running kube-router beside Flannel leftovers', () => {
  it('a run keeps kube-router byte for byte and removes Flannel; --cni kube-router refuses with exit 3', async () => {
    const n = node('kr-live', true);
    const pid = await startAgent(nodes, n.ns, 'kube-router');
    const before = state(n);

    const refused = runCli(n, ['run', '--yes', '--cni', 'kube-router', ...nodeArgs(n)]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toBe(
      `cni-sweep: error: --cni kube-router: kube-router is live on this node: its agent runs: kube-router (pid ${pid}); cni-sweep never removes a live CNI\n` +
        '  hint: stop it for good first, by deleting its DaemonSet (kubectl -n kube-system delete daemonset kube-router), wait for its pods to go, then run again\n',
    );
    expect(state(n)).toEqual(before);

    const r = runCli(n, ['run', '--yes', '--json', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.cni).toEqual(['flannel']);
    expect(report.targets).toContainEqual({ cni: 'kube-router', action: 'keep', why: `live: its agent runs: kube-router (pid ${pid})` });
    const after = state(n);
    expect(kubeRouterOnly(after)).toEqual(kubeRouterOnly(before));
    expect(after.links.join('\n')).not.toMatch(/^(cni0|flannel\.1) /m);
    expect(after.ipt4nft).not.toMatch(/FLANNEL|flanneld/);
    expect(fs.existsSync(path.join(n.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);
  });
});
