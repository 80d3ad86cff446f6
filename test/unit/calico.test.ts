// Calico and Canal on the fake host, including what this kernel cannot create for the integration
// tests: tunl0 (the ipip module's device) and WireGuard devices, and unloading ipip.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentReporter } from '../../src/events.js';
import { FakeHost } from '../../src/host/fake.js';
import { Gaps } from '../../src/inspect.js';
import { firewall } from '../../src/phases/firewall.js';
import { PHASES } from '../../src/phases/index.js';
import { interfaces } from '../../src/phases/interfaces.js';
import { modules } from '../../src/phases/modules.js';
import { netns } from '../../src/phases/netns.js';
import { routes } from '../../src/phases/routes.js';
import { detect } from '../../src/profiles/detect.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { sweep } from '../../src/run.js';
import { CALICO_CONFLIST, CANAL_CONFLIST } from '../helpers/calico-node.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';
import { ctxFor, DEFAULT_PHASES, FLANNEL, runOptions } from './helpers.js';

const profiles = loadProfiles();
const CALICO = profiles.find((p) => p.name === 'calico')!;
const CANAL = profiles.find((p) => p.name === 'canal')!;
const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '../../fixtures/calico', name), 'utf8');
const bare = (steps: Array<{ argv: string[]; stdin?: string }>) =>
  steps.map((s) => (s.stdin === undefined ? { argv: s.argv } : { argv: s.argv, stdin: s.stdin }));
const POD_VETHS = ['cali1a2b3c4d5e6', 'calif0e1d2c3b4a'];

/** Calico (IPIP and VXLAN, WireGuard on) left on a node, with the real iptables-save of fixtures/calico. */
function calicoNode(host: FakeHost = foreignNode(), o: { tunl0Up?: boolean } = {}): FakeHost {
  host
    .addLink({
      ifname: 'tunl0',
      mtu: 1480,
      flags: o.tunl0Up === false ? ['NOARP'] : ['NOARP', 'UP', 'LOWER_UP'],
      linkinfo: { info_kind: 'ipip' },
    })
    .addLink({ ifname: 'vxlan.calico', mtu: 1450, flags: ['UP'], linkinfo: { info_kind: 'vxlan' } })
    .addLink({ ifname: 'wireguard.cali', mtu: 1440, flags: ['UP'], linkinfo: { info_kind: 'wireguard' } })
    .addLink({ ifname: 'wg-v6.cali', mtu: 1420, flags: ['UP'], linkinfo: { info_kind: 'wireguard' } });
  POD_VETHS.forEach((v, i) => host.addLink({ ifname: v, flags: ['UP'], link_netnsid: 20 + i, linkinfo: { info_kind: 'veth' } }));
  if (o.tunl0Up !== false) host.addAddr('tunl0', '172.20.5.0/32');
  host
    .addRoute(4, { type: 'blackhole', dst: '172.20.5.0/26', protocol: 'bird' })
    .addRoute(4, { dst: '172.20.5.2', dev: POD_VETHS[0], scope: 'link' })
    .addRoute(4, { dst: '172.20.6.0/26', gateway: '192.168.1.12', dev: 'eth0', protocol: 'bird' })
    .addRoute(4, { dst: '172.20.9.0/26', gateway: '192.168.1.13', dev: 'tunl0', protocol: 'bird', flags: ['onlink'] })
    .addRoute(4, { type: 'blackhole', dst: '172.20.8.0/26', protocol: '80' });
  host.setIptables('iptables-nft', fixture('iptables-save.v4.txt'));
  host.ipsets.push('cali40masq-ipam-pools', 'cali40all-ipam-pools', 'cali40all-hosts-net', 'site-allow');
  host.addNftTable('ip', 'calico');
  host
    .writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST)
    .writeFile('/etc/cni/net.d/calico-kubeconfig', 'apiVersion: v1\n', 0o600)
    .writeFile('/var/lib/calico/nodename', 'node-1')
    .writeFile('/var/log/calico/cni/cni.log', 'log\n');
  host.modules.set('ipip', { refs: 0 });
  return host;
}

describe('Calico detection', () => {
  it('tells Calico from Canal by the IPAM type of the calico plugin', async () => {
    const calico = await detect(calicoNode(), profiles, new Gaps());
    expect(calico.map((d) => d.profile.name)).toEqual(['calico']);
    expect(calico[0]!.evidence.slice(0, 2)).toEqual(['config /etc/cni/net.d/10-calico.conflist', 'state /var/lib/calico']);

    const { host } = dirtyFlannelNode();
    host.fs.delete(host.realPath('/etc/cni/net.d/10-flannel.conflist'));
    host.writeFile('/etc/cni/net.d/10-canal.conflist', CANAL_CONFLIST);
    host.addLink({ ifname: POD_VETHS[0]!, linkinfo: { info_kind: 'veth' } });
    const canal = await detect(host, profiles, new Gaps());
    // Flannel's and Calico's state without a config of their own is Canal's.
    expect(canal.map((d) => d.profile.name)).toEqual(['canal']);
  });

  it('does not take a tunl0 that is down for Calico: the ipip module makes one wherever it is loaded', async () => {
    const host = foreignNode().addLink({ ifname: 'tunl0', flags: ['NOARP'], linkinfo: { info_kind: 'ipip' } });
    expect(await detect(host, profiles, new Gaps())).toEqual([]);
  });
});

describe('Calico phases', () => {
  it('interfaces: deletes cali* veths, vxlan.calico and the WireGuard devices as one link group; flushes and downs tunl0, which cannot be deleted', async () => {
    const plan = await interfaces.plan(await ctxFor(calicoNode(), { profiles: [CALICO] }));
    expect(bare(plan.steps)).toEqual([
      {
        argv: ['ip', '-batch', '-'],
        stdin:
          'link set dev vxlan.calico group 4242424\nlink set dev wireguard.cali group 4242424\nlink set dev wg-v6.cali group 4242424\nlink set dev cali1a2b3c4d5e6 group 4242424\nlink set dev calif0e1d2c3b4a group 4242424\nlink delete group 4242424\naddress flush dev tunl0\nlink set tunl0 down\n',
      },
    ]);
  });

  it('interfaces: leaves a tunl0 that is already down and has no address alone', async () => {
    const plan = await interfaces.plan(await ctxFor(calicoNode(foreignNode(), { tunl0Up: false }), { profiles: [CALICO] }));
    expect(plan.steps[0]!.stdin).not.toContain('tunl0');
  });

  it('routes: BIRD and felix routes and IPAM blackholes; not routes through devices the interfaces phase takes down', async () => {
    const plan = await routes.plan(await ctxFor(calicoNode(), { profiles: [CALICO] }));
    expect(bare(plan.steps)).toEqual([
      {
        argv: ['ip', '-batch', '-'],
        stdin:
          'route delete blackhole 172.20.5.0/26\nroute delete 172.20.6.0/26 via 192.168.1.12 dev eth0\nroute delete blackhole 172.20.8.0/26\n',
      },
    ]);
    const alone = await ctxFor(calicoNode(), { profiles: [CALICO] });
    alone.selected.delete('interfaces');
    expect((await routes.plan(alone)).steps[0]!.stdin).toContain('route delete 172.20.9.0/26 via 192.168.1.13 dev tunl0\n');
  });

  it('firewall: cali-* chains in raw, mangle, nat and filter with their jumps and cali: rules, the nftables table, then the ipsets', async () => {
    const plan = await firewall.plan(await ctxFor(calicoNode(), { profiles: [CALICO] }));
    expect(plan.steps.map((s) => s.argv.join(' '))).toEqual(['iptables-nft-restore --noflush -w', 'nft -f -', 'ipset restore']);
    // The batches side by side; the ipsets only once no rule references them any more.
    expect(plan.steps.map((s) => s.concurrent ?? false)).toEqual([true, true, false]);
    const script = plan.steps[0]!.stdin!;
    expect(script.match(/^\*\w+$/gm)).toEqual(['*mangle', '*raw', '*filter', '*nat']);
    expect(script).toMatch(
      /^-D FORWARD -m comment --comment "cali:\S+" -m comment --comment "Policy explicitly accepted packet\." -m mark --mark 0x10000\/0x10000 -j ACCEPT$/m,
    );
    expect(script).toMatch(/^-X cali-fw-cali\w+$/m);
    expect(script).not.toContain('--dport 2222'); // the site's mangle rule
    expect(plan.steps[1]!.stdin).toBe('delete table ip calico\n');
    expect(plan.steps[2]!.stdin).toBe('destroy cali40masq-ipam-pools\ndestroy cali40all-ipam-pools\ndestroy cali40all-hosts-net\n');
  });

  it("modules (opt-in): unloads ipip when tunl0 is Calico's and nothing else uses the module", async () => {
    const ctx = await ctxFor(calicoNode(), { profiles: [CALICO] });
    expect(bare((await modules.plan(ctx)).steps)).toEqual([{ argv: ['modprobe', '-r', 'ipip'] }]);
  });

  it('modules: keeps ipip loaded while another ipip tunnel or a module uses it, and says why', async () => {
    const other = calicoNode().addLink({ ifname: 'site-tun', linkinfo: { info_kind: 'ipip' } });
    expect(await modules.plan(await ctxFor(other, { profiles: [CALICO] }))).toEqual({
      steps: [],
      notes: ['ipip left loaded: site-tun still use it'],
    });
    const used = calicoNode();
    used.modules.set('ipip', { refs: 1, users: 'xfrm4_tunnel' });
    expect(await modules.plan(await ctxFor(used, { profiles: [CALICO] }))).toEqual({
      steps: [],
      notes: ['ipip left loaded: in use (1 reference by xfrm4_tunnel)'],
    });
  });

  it("a full run with --with modules leaves nothing of Calico, tunl0 included, and keeps the site's ipset and rules", async () => {
    const host = calicoNode();
    const r = await sweep({
      host,
      profiles: [CALICO],
      phases: PHASES,
      selected: new Set([...DEFAULT_PHASES, 'modules']),
      reporter: silentReporter,
      opts: runOptions({ dryRun: false }),
    });
    expect(r.report.failed).toBeUndefined();
    expect(host.linkNames().filter((l) => /cali|tunl0/.test(l))).toEqual([]);
    expect(host.routes[4].filter((x) => x.protocol === 'bird' || x.protocol === '80')).toEqual([]);
    expect(host.ipsets).toEqual(['site-allow']);
    expect(host.nftTables.map((t) => t.name)).toEqual(['site-filter']);
    expect(host.iptablesSave('iptables-nft')).not.toMatch(/cali/);
    expect(host.iptablesSave('iptables-nft')).toContain('--dport 2222');
    expect(host.paths().filter((p) => /calico/.test(p) && !p.startsWith('/var/backups/'))).toEqual([]);
    expect(host.modules.has('ipip')).toBe(false);
  });
});

describe('migration on the fake host', () => {
  it("--cni flannel beside Calico keeps the namespaces of Calico's pods and removes Flannel's", async () => {
    const { host, pods } = dirtyFlannelNode();
    calicoNode(host);
    const calicoNs = host
      .addNetns('cni-ca11c0de-0000-0000-0000-000000000001')
      .realPath('/run/netns/cni-ca11c0de-0000-0000-0000-000000000001');
    host.netnsLinks.set(calicoNs, [
      { ifindex: 2, ifname: 'eth0', link_index: host.link(POD_VETHS[0]!)!.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
    ]);
    for (const p of pods)
      host.netnsLinks.set(host.realPath(`/run/netns/${p.netns}`), [
        { ifindex: 2, ifname: 'eth0', link_index: host.link(p.veth)!.ifindex, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
      ]);
    const plan = await netns.plan(await ctxFor(host, { profiles: [FLANNEL] }));
    expect(plan.steps.at(-1)!.argv.slice(3).sort()).toEqual(pods.map((p) => `/run/netns/${p.netns}`).sort());
    expect(plan.notes).toEqual([
      `kept /run/netns/cni-ca11c0de-0000-0000-0000-000000000001: its pod interface pairs with ${POD_VETHS[0]}, which is not flannel's`,
    ]);
  });

  it("Canal owns the union: Flannel's chains and devices and Calico's", async () => {
    expect(CANAL.firewall.chainPrefixes).toEqual(['FLANNEL-', 'cali-']);
    expect(CANAL.interfaces.names).toEqual(expect.arrayContaining(['flannel.1', 'vxlan.calico', 'wireguard.cali']));
    expect(CANAL.interfaces.names).not.toContain('cni0');
    expect(CANAL.nftables).toEqual([
      { family: 'ip', name: 'flannel-ipv4' },
      { family: 'ip6', name: 'flannel-ipv6' },
      { family: 'ip', name: 'calico' },
      { family: 'ip6', name: 'calico' },
    ]);
  });
});
