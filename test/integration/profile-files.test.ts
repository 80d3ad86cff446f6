// A CNI cni-sweep has never heard of, described in a profile file, end to end on real kernel state:
// its bridge, pod veths and vxlan device, its chains in iptables-nft and iptables-legacy, a tagged
// rule in FORWARD, its ipset and nftables table, its files, beside a site's own of each. `plan`
// shows it only with the file; `run --cni madeup` removes exactly its state; a bad file stops
// everything with one line.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFlannelNode, destroyFlannelNode, inNs, write, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, REPO, runCli, scratch, snapshot, type NodeState, OWN } from '../helpers/harness.js';

const made: FlannelNode[] = [];
afterEach(() => {
  while (made.length) destroyFlannelNode(made.pop()!);
});

const PROFILE = `# A made-up CNI, as an operator would describe one.
name: madeup
description: a made-up CNI
config:
  pluginTypes: [madeup]
defaultNetworks: [madeupnet]
state:
  paths: [/var/lib/madeup, /run/madeup]
  networkPaths: ['/var/lib/cni/networks/{network}']
interfaces:
  names: [mdp0, mdp.vx]
  patterns: ['^mdpv[0-9a-f]{4}$']
  bridgePorts: true
routes: {}
firewall:
  chainPrefixes: [MADEUP-]
  comments: [madeup forward]
  ipsetPrefixes: [madeup-]
nftables:
  - { family: ip, name: madeup }
agents:
  processes: [{ name: madeupd }]
  stop: kubectl -n kube-system delete daemonset madeup
`;

const CONFLIST = JSON.stringify(
  { cniVersion: '1.0.0', name: 'madeupnet', plugins: [{ type: 'madeup', ipam: { type: 'host-local', subnet: '10.77.1.0/24' } }] },
  null,
  2,
);

/** A node with the site's state (uplink, docker0, kube-proxy and site rules, site files) and the made-up CNI's, plus a site ipset. */
function madeupNode(tag: string): FlannelNode {
  const node = createFlannelNode({ ...scratch(tag), flannel: false });
  made.push(node);
  const ipb = (lines: string[]) => inNs(node.ns, 'ip', ['-batch', '-'], lines.join('\n') + '\n');
  ipb([
    'link add mdp0 type bridge',
    'link set mdp0 up',
    'addr add 10.77.1.1/24 dev mdp0',
    ...['a1b2', 'c3d4'].flatMap((id) => [
      `link add mdpv${id} type veth peer name mdpp-${id}`,
      `link set mdpv${id} master mdp0`,
      `link set mdpv${id} up`,
    ]),
    'link add mdp.vx type vxlan id 77 local 192.168.1.11 dev eth0 dstport 4789 nolearning',
    'link set mdp.vx up',
    'route add 10.77.2.0/24 via 10.77.2.0 dev mdp.vx onlink',
    // the site's own vxlan and a veth of its own on its bridge stay
    'link add site.vx type vxlan id 99 local 192.168.1.11 dev eth0 dstport 4790 nolearning',
    'link add mdpvsite type veth peer name mdpvsite-p',
    'link set mdpvsite master site-br',
  ]);
  inNs(node.ns, 'ipset', ['create', 'madeup-pods', 'hash:net']);
  inNs(node.ns, 'ipset', ['add', 'madeup-pods', '10.77.1.0/24']);
  inNs(node.ns, 'ipset', ['create', 'site-allow', 'hash:ip']);
  inNs(node.ns, 'ipset', ['add', 'site-allow', '192.168.50.7']);
  inNs(
    node.ns,
    'iptables-nft-restore',
    ['--noflush'],
    [
      '*filter',
      ':MADEUP-FWD - [0:0]',
      '-A FORWARD -j MADEUP-FWD',
      '-A FORWARD -s 10.77.0.0/16 -m comment --comment "madeup forward" -j ACCEPT',
      '-A FORWARD -s 10.77.0.0/16 -m comment --comment "site: keep" -j ACCEPT',
      '-A MADEUP-FWD -d 10.77.0.0/16 -j ACCEPT',
      'COMMIT',
      '*nat',
      ':MADEUP-POSTRTG - [0:0]',
      '-A POSTROUTING -j MADEUP-POSTRTG',
      '-A POSTROUTING -m set --match-set site-allow src -j RETURN',
      '-A MADEUP-POSTRTG -m set --match-set madeup-pods src -j MASQUERADE',
      'COMMIT',
      '',
    ].join('\n'),
  );
  inNs(node.ns, 'iptables-legacy-restore', ['--noflush'], '*filter\n:MADEUP-LEG - [0:0]\n-A INPUT -j MADEUP-LEG\nCOMMIT\n');
  inNs(
    node.ns,
    'nft',
    ['-f', '-'],
    'table ip madeup {\n  chain madeup_forward {\n    type filter hook forward priority 0; policy accept;\n  }\n}\n',
  );
  write(node.root, 'etc/cni/net.d/10-madeup.conflist', CONFLIST);
  write(node.root, 'var/lib/madeup/state.db', 'madeup state\n', 0o600);
  write(node.root, 'run/madeup/agent.pid', '4242\n');
  write(node.root, 'var/lib/cni/networks/madeupnet/10.77.1.5', `${'a'.repeat(64)}\r\neth0`, 0o600);
  write(node.root, 'var/lib/madeup-site/keep', 'the site’s, beside it\n');
  return node;
}

interface State extends NodeState {
  ipsets: string;
}
const state = (n: FlannelNode): State => {
  const s = snapshot(n);
  return { ...s, files: s.files.filter((f) => !OWN.test(f)), ipsets: inNs(n.ns, 'ipset', ['save']) };
};

const MADEUP_LINK = /^(mdp0|mdp\.vx|mdpv[0-9a-f]{4}|mdpp-[0-9a-f]{4})[ @]/;
/** The state before, less exactly what is the made-up CNI's. */
function withoutMadeup(s: State): State {
  const drop = (t: string, re: RegExp) =>
    t
      .split('\n')
      .filter((l) => !re.test(l))
      .join('\n');
  return {
    ...s,
    links: s.links.filter((l) => !MADEUP_LINK.test(l)),
    addrs: drop(s.addrs, MADEUP_LINK),
    routes4: drop(s.routes4, /10\.77\./),
    routes6: drop(s.routes6, / dev (mdp0|mdp\.vx|mdpv[0-9a-f]{4}|mdpp-[0-9a-f]{4}) /),
    ipt4nft: drop(s.ipt4nft, /MADEUP-|madeup forward/),
    ipt4legacy: drop(s.ipt4legacy, /MADEUP-/),
    nft: s.nft
      .split(/\n(?=table )/)
      .filter((t) => !t.startsWith('table ip madeup '))
      .join('\n'),
    files: s.files.filter(
      (f) =>
        !/^(etc\/cni\/net\.d\/10-madeup\.conflist|var\/lib\/madeup(\/| )|run\/madeup(\/| )|var\/lib\/cni\/networks\/madeupnet)/.test(f),
    ),
    ipsets: drop(s.ipsets, /madeup-pods/),
  };
}

describe('a made-up CNI from a profile file', () => {
  it('plan shows it only with the file; run --cni madeup (profile in profiles.d) removes exactly its state', () => {
    const node = madeupNode('pfiles');
    const file = path.join(path.dirname(node.root), 'madeup.yaml');
    fs.writeFileSync(file, PROFILE);
    const before = state(node);

    const unknown = runCli(node, ['plan', ...nodeArgs(node)]);
    expect(unknown.code).toBe(0);
    expect(unknown.stderr).toContain('no CNI state found on this node');

    const plan = runCli(node, ['plan', '--profile', file, ...nodeArgs(node)]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toMatch(
      /found madeup: config \/etc\/cni\/net\.d\/10-madeup\.conflist, state \/var\/lib\/madeup, state \/run\/madeup, interface /,
    );
    expect(plan.stdout).toContain('-X MADEUP-FWD');
    expect(plan.stdout).toContain('-D FORWARD -s 10.77.0.0/16 -m comment --comment "madeup forward" -j ACCEPT');
    expect(plan.stdout).toContain('destroy madeup-pods');
    expect(plan.stdout).toContain('delete table ip madeup');
    expect(plan.stdout).toMatch(/^link set dev mdp0 group \d+$/m);
    expect(plan.stdout).not.toMatch(/site|mdpvsite|docker0/i);
    expect(state(node)).toEqual(before); // a plan changes nothing

    // The same file copied into the node's profiles.d: no --profile needed.
    write(node.root, 'etc/cni-sweep/profiles.d/madeup.yaml', PROFILE);
    const withDir = state(node);
    const r = runCli(node, ['run', '--yes', '--cni', 'madeup', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).changed).toBe(true);
    expect(state(node)).toEqual(withoutMadeup(withDir));

    const again = runCli(node, ['run', '--yes', '--cni', 'madeup', '--json', ...nodeArgs(node)]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changed).toBe(false);
  });

  it('a bad file in profiles.d stops plan and run with one line naming the file and the field, before anything runs', () => {
    const node = madeupNode('pfbad');
    write(
      node.root,
      'etc/cni-sweep/profiles.d/madeup.yaml',
      PROFILE.replace('[0-9a-f]{4}', () => '[0-9a-f{4}'),
    );
    const before = state(node);
    for (const args of [['plan'], ['run', '--yes'], ['doctor']]) {
      const r = runCli(node, [...args, ...nodeArgs(node)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `cni-sweep: error: profile ${node.root}/etc/cni-sweep/profiles.d/madeup.yaml: interfaces.patterns.0: must be a valid regular expression\n`,
      );
      expect(r.stdout).toBe('');
      // No systemctl, kubectl or crictl was called but the loader's read-only early listing of the units' states.
      expect(r.calls.filter((c) => !c.startsWith('systemctl is-active '))).toEqual([]);
    }
    expect(state(node)).toEqual(before);
  });
});

/** weave-npc's ipset names: "weave-" and a hash in an alphabet of 85 characters (npc/shortname.go), as its tests show them. */
const NPC_SETS = ['weave-;rGqyMIl1HN^cfDki~Z$3]6!N', 'weave-s_+ChJId4Uy_$}G;WdH|~TK)I'];
const NOTE = `"NOTE: this must go before '-j KUBE-FORWARD'"`;

/** Weave Net in sleeve mode (no Open vSwitch here) with weave-npc, as weaveworks/weave sets a node up. */
function weaveNode(tag: string): FlannelNode {
  const node = createFlannelNode({ ...scratch(tag), flannel: false });
  made.push(node);
  inNs(
    node.ns,
    'ip',
    ['-batch', '-'],
    [
      'link add weave type bridge',
      'link set weave up',
      'addr add 10.32.0.1/12 dev weave',
      'link add vethwe-bridge type veth peer name vethwe-pcap',
      'link set vethwe-bridge master weave',
      // net/veth.go: the pod's host end vethwepl<id>, its peer vethwepg<id>
      'link add vethwepl1a2b3c4 type veth peer name vethwepg1a2b3c4',
      'link set vethwepl1a2b3c4 master weave',
      '',
    ].join('\n'),
  );
  for (const set of NPC_SETS) inNs(node.ns, 'ipset', ['create', set, 'hash:ip']);
  inNs(node.ns, 'ipset', ['create', 'weaver-no-masq-local', 'hash:net']);
  inNs(
    node.ns,
    'iptables-nft-restore',
    ['--noflush'],
    [
      '*filter',
      ...['WEAVE-NPC', 'WEAVE-NPC-INGRESS', 'WEAVE-NPC-DEFAULT', 'WEAVE-NPC-EGRESS', 'WEAVE-CANARY'].map((c) => `:${c} - [0:0]`),
      '-A INPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6784 -m addrtype ! --src-type LOCAL -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment "Block non-local access to Weave Net control port" -j DROP',
      '-A INPUT -i weave -j WEAVE-NPC-EGRESS',
      `-A FORWARD -i weave -m comment --comment ${NOTE} -j WEAVE-NPC-EGRESS`,
      `-A FORWARD -o weave -m comment --comment ${NOTE} -j WEAVE-NPC`,
      '-A WEAVE-NPC -m state --state RELATED,ESTABLISHED -j ACCEPT',
      `-A WEAVE-NPC-INGRESS -m set --match-set ${NPC_SETS[0]} src -m set --match-set ${NPC_SETS[1]} dst -j ACCEPT`,
      'COMMIT',
      '*nat',
      ':WEAVE - [0:0]',
      ':WEAVE-CANARY - [0:0]',
      '-A POSTROUTING -j WEAVE',
      '-A WEAVE -m set --match-set weaver-no-masq-local dst -m comment --comment "Prevent SNAT to locally running containers" -j RETURN',
      '-A WEAVE -s 10.32.0.0/12 -d 224.0.0.0/4 -j RETURN',
      'COMMIT',
      '*mangle',
      ':WEAVE-CANARY - [0:0]',
      'COMMIT',
      '',
    ].join('\n'),
  );
  // weave: create_cni_config, byte for byte
  write(
    node.root,
    'etc/cni/net.d/10-weave.conflist',
    '{\n    "cniVersion": "0.3.0",\n    "name": "weave",\n    "plugins": [\n        {\n            "name": "weave",\n            "type": "weave-net",\n            "hairpinMode": true\n        },\n        {\n            "type": "portmap",\n            "capabilities": {"portMappings": true},\n            "snat": true\n        }\n    ]\n}\n',
  );
  write(node.root, 'var/lib/weave/weave-netdata.db', 'bolt\n', 0o600);
  return node;
}

describe('the shipped Antrea profile file', () => {
  it("removes Antrea's Egress rules (a mark alone) and their table; a site's rule to one of Antrea's table numbers, and that table, stay", () => {
    const node = createFlannelNode({ ...scratch('pfantrea'), flannel: false });
    made.push(node);
    const ip = (...a: string[]) => inNs(node.ns, 'ip', a);
    ip('link', 'add', 'antrea-gw0', 'type', 'bridge');
    ip('link', 'set', 'antrea-gw0', 'up');
    ip('addr', 'add', '10.10.1.1/24', 'dev', 'antrea-gw0');
    // Antrea's Egress (pkg/agent/route/route_linux.go): fwmark <id>/0xff lookup 101 + id - 1.
    ip('rule', 'add', 'fwmark', '0x1/0xff', 'lookup', '101');
    ip('route', 'add', 'default', 'via', '192.168.1.77', 'dev', 'eth0', 'table', '101');
    // The site's second uplink, by source, in table 102.
    ip('rule', 'add', 'priority', '1000', 'from', '192.168.7.0/24', 'lookup', '102');
    ip('route', 'add', 'default', 'via', '192.168.1.254', 'dev', 'eth0', 'table', '102');
    write(
      node.root,
      'etc/cni/net.d/10-antrea.conflist',
      JSON.stringify({ cniVersion: '0.3.0', name: 'antrea', plugins: [{ type: 'antrea', ipam: { type: 'host-local' } }] }),
    );
    const before = state(node);
    const rules = () => ip('-4', 'rule', 'show');
    const rulesBefore = rules();
    const args = ['--profile', path.join(REPO, 'profiles/antrea.yaml'), ...nodeArgs(node)];
    const plan = runCli(node, ['plan', '--cni', 'antrea', ...args]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(
      "# kept table 102 (IPv4): ip -4 rule priority 1000 from 192.168.7.0/24 table 102, which is not the CNI's, looks it up\n",
    );
    const r = runCli(node, ['run', '--yes', '--cni', 'antrea', ...args]);
    expect(r.code, r.stderr).toBe(0);
    expect(rules()).toBe(rulesBefore.replace(/^\d+:\s+from all fwmark 0x1\/0xff lookup 101 *\n/m, ''));
    const after = state(node);
    expect(after.routes4).toBe(
      before.routes4
        .split('\n')
        .filter((l) => !/table 101|antrea-gw0|10\.10\.1\./.test(l))
        .join('\n'),
    );
    expect(after.routes4).toMatch(/^default via 192\.168\.1\.254 dev eth0 table 102/m);
  });
});

describe('the shipped Weave Net profile file', () => {
  it('removes Weave (sleeve mode) on real kernel state: its bridge and veths, WEAVE* chains and tagged rules, weave-* ipsets, /var/lib/weave; the rest byte for byte', () => {
    const node = weaveNode('pfweave');
    const before = state(node);
    const args = ['--profile', path.join(REPO, 'profiles/weave.yaml'), ...nodeArgs(node)];
    const plan = runCli(node, ['plan', ...args]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toMatch(/found weave: config \/etc\/cni\/net\.d\/10-weave\.conflist, state \/var\/lib\/weave, interface /);
    const r = runCli(node, ['run', '--yes', '--cni', 'weave', '--json', ...args]);
    expect(r.code, r.stderr).toBe(0);
    const WEAVE_LINK = /^(weave|vethwe-bridge|vethwe-pcap|vethwepl1a2b3c4|vethwepg1a2b3c4)[ @]/;
    const drop = (t: string, re: RegExp) =>
      t
        .split('\n')
        .filter((l) => !re.test(l))
        .join('\n');
    expect(state(node)).toEqual({
      ...before,
      links: before.links.filter((l) => !WEAVE_LINK.test(l)),
      addrs: drop(before.addrs, WEAVE_LINK),
      routes4: drop(before.routes4, /10\.32\./),
      routes6: drop(before.routes6, / dev (weave|vethwe[-a-z0-9]+) /),
      ipt4nft: drop(before.ipt4nft, /WEAVE|Weave/),
      ipsets: drop(before.ipsets, /weave/),
      files: before.files.filter((f) => !/^(etc\/cni\/net\.d\/10-weave\.conflist|var\/lib\/weave(\/| ))/.test(f)),
    });
  });
});
