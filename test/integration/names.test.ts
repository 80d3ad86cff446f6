// Names from the node that would turn a cleanup into damage, on real kernel state in a network
// namespace and real files in a temporary root: hostile network names, a config naming the uplink
// or lo as its bridge, file and device names that would inject commands into the printed plan,
// a file name that is not UTF-8, and subnet.env as flanneld writes it by hand or garbles it.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FLANNEL_CONFLIST, inNs, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { cliEnv, nodeArgs, runCli, snapshot, TestNodes, type NodeState, OWN } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 2 });
afterEach(nodes.cleanUp);
const dirtyNode = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

const CONF = 'etc/cni/net.d/10-flannel.conflist';
const withName = (name: string) => FLANNEL_CONFLIST.replace('"name": "cbr0"', `"name": ${JSON.stringify(name)}`);
const withBridge = (bridge: string) =>
  FLANNEL_CONFLIST.replace('"delegate": {', `"delegate": {\n        "bridge": ${JSON.stringify(bridge)},`);
const tree = (dir: string): string[] =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map(String).sort() : ['<gone>'];
const nodeOnly = (s: NodeState): NodeState => ({ ...s, files: s.files.filter((f) => !OWN.test(f) && !/^var\/backups\/ /.test(f)) });
const notes = (report: { phases: Array<{ name: string; notes: string[] }> }, phase: string) =>
  report.phases.find((p) => p.name === phase)?.notes ?? [];

describe('hostile CNI network names', () => {
  it.each(['', '.', '/', 'cbr0/..', 'other-net/.', 'cbr0/../../../../../etc'])(
    'name %j: /etc, every network IPAM and the config stay, and the plan says why',
    (name) => {
      const node = dirtyNode('badname', { pods: 1 });
      fs.writeFileSync(path.join(node.root, CONF), withName(name));
      fs.mkdirSync(path.join(node.root, 'var/lib/cni/networks/other-net'), { recursive: true });
      fs.writeFileSync(path.join(node.root, 'var/lib/cni/networks/other-net/10.1.0.2'), 'x');
      const etc = tree(path.join(node.root, 'etc'));
      const ipam = tree(path.join(node.root, 'var/lib/cni/networks'));

      const plan = runCli(node, ['plan', ...nodeArgs(node)]);
      expect(plan.code).toBe(0);
      // Commands as bash reads them: the script puts each operand on a continuation line.
      const commands = plan.stdout.replace(/ \\\n {2}/g, ' ');
      expect(commands).toMatch(/^rm -rf -- /m);
      expect(commands).not.toMatch(/^rm -rf .*(\/etc|\/var\/lib\/cni\/networks)( |\/? |\/?$)/m);
      expect(plan.stdout).toContain('# kept /etc/cni/net.d/10-flannel.conflist: ');

      const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(tree(path.join(node.root, 'etc'))).toEqual(etc);
      expect(tree(path.join(node.root, 'var/lib/cni/networks'))).toEqual(ipam);
      expect(fs.readFileSync(path.join(node.root, CONF), 'utf8')).toBe(withName(name));
      expect(notes(report, 'cni-config')).toEqual([
        expect.stringMatching(/^kept \/etc\/cni\/net\.d\/10-flannel\.conflist: .*nothing named after it/),
      ]);
      // What is Flannel's by its own names still goes.
      expect(inNs(node.ns, 'ip', ['-o', 'link', 'show'])).not.toMatch(/ (cni0|flannel\.1)[:@]/);
      expect(fs.existsSync(path.join(node.root, 'run/flannel'))).toBe(false);
    },
  );
});

describe('a config naming the uplink or lo as its bridge', () => {
  it('"bridge": "eth0" leaves the uplink, its address and the default route; the run succeeds', () => {
    const node = dirtyNode('uplink');
    fs.writeFileSync(path.join(node.root, CONF), withBridge('eth0'));
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(inNs(node.ns, 'ip', ['-o', 'addr', 'show', 'dev', 'eth0'])).toContain('192.168.1.11/24');
    expect(inNs(node.ns, 'ip', ['route', 'show', 'default'])).toContain('default via 192.168.1.1 dev eth0');
    expect(notes(JSON.parse(r.stdout), 'interfaces')).toContain('kept eth0: it is the uplink: a default route goes through it');
    expect(inNs(node.ns, 'ip', ['-o', 'link', 'show'])).not.toMatch(/ (cni0|flannel\.1)[:@]/);
  });

  it('"bridge": "lo" leaves lo up; the interfaces phase does not fail half way', () => {
    const node = dirtyNode('lo');
    fs.writeFileSync(path.join(node.root, CONF), withBridge('lo'));
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.phases.find((p: { name: string }) => p.name === 'interfaces').status).toBe('ok');
    expect(notes(report, 'interfaces')).toContain('kept lo: the loopback device');
    expect(inNs(node.ns, 'ip', ['-o', 'link', 'show', 'lo'])).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect(inNs(node.ns, 'ip', ['-o', 'link', 'show'])).not.toMatch(/ (cni0|flannel\.1)[:@]/);
  });
});

describe("devices with Flannel's names that carry another network", () => {
  it("a cni0 with a site's vxlan port, veths named flannel.7 and flannel-wg whose peers are the site's, a bridge named flannel.1 with a site veth: all stay, with why; flannel.1 goes", () => {
    const node = dirtyNode('samename');
    inNs(
      node.ns,
      'ip',
      ['-batch', '-'],
      [
        'link add site-vx type vxlan id 99 dstport 4789 dev eth0',
        'link set site-vx master cni0',
        'link add flannel.7 type veth peer name appx',
        'addr add 172.29.0.1/24 dev appx',
        'link add flannel-wg type veth peer name appy',
        'addr add 172.28.0.1/24 dev appy',
        '',
      ].join('\n'),
    );
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(notes(JSON.parse(r.stdout), 'interfaces')).toEqual(
      expect.arrayContaining([
        'kept cni0: it has the port site-vx, which is not a pod veth',
        "kept flannel.7: it is a veth whose peer appx carries 172.29.0.1: not a pod's",
        "kept flannel-wg: it is a veth whose peer appy carries 172.28.0.1: not a pod's",
      ]),
    );
    const links = inNs(node.ns, 'ip', ['-o', 'link', 'show']);
    for (const l of ['cni0', 'site-vx', 'flannel.7', 'appx', 'flannel-wg', 'appy'])
      expect(links).toMatch(new RegExp(` ${l.replace('.', '\\.')}[:@]`));
    expect(inNs(node.ns, 'ip', ['-o', 'addr', 'show'])).toMatch(/ appx +inet 172\.29\.0\.1\/24 /);
    expect(inNs(node.ns, 'ip', ['-o', 'addr', 'show'])).toMatch(/ appy +inet 172\.28\.0\.1\/24 /);
    expect(links).not.toMatch(/ flannel\.1[:@]/);
  });
});

describe("a site's chain whose name has a quote", () => {
  it('does not stop the node from being read: Flannel goes, the chain and its jump stay byte for byte', () => {
    const node = dirtyNode('quotechain', { pods: 1 });
    inNs(node.ns, 'iptables-nft', ['-N', 'a"b']);
    inNs(node.ns, 'iptables-nft', ['-A', 'a"b', '-s', '10.99.0.0/16', '-j', 'DROP']);
    inNs(node.ns, 'iptables-nft', ['-A', 'INPUT', '-j', 'a"b']);
    const site = () =>
      inNs(node.ns, 'iptables-nft-save', [])
        .split('\n')
        .filter((l) => l.includes('a"b'));
    const before = site();
    expect(before).toHaveLength(3);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(site()).toEqual(before);
    expect(inNs(node.ns, 'iptables-nft-save', [])).not.toMatch(/FLANNEL/);
  });
});

/** Flannel configs and a result cache whose names carry newlines, quotes, `$(...)`, backquotes and a byte that is not UTF-8. */
const HOSTILE_CONFS = ['09-x\ntouch injected #.conflist', '11-it\'s "q" `touch injected2`.conflist', '12-$(touch injected3).conflist'];
function makeHostile(node: FlannelNode) {
  for (const f of HOSTILE_CONFS) fs.writeFileSync(path.join(node.root, 'etc/cni/net.d', f), FLANNEL_CONFLIST);
  fs.writeFileSync(Buffer.from(path.join(node.root, 'etc/cni/net.d/13-\xff\xfe.conflist'), 'latin1'), FLANNEL_CONFLIST);
  const cid = node.pods[0]!.cid;
  fs.writeFileSync(path.join(node.root, `var/lib/cni/results/cbr0-${cid}-eth1\n$(touch injected4)`), '{}');
  // A device name the kernel takes but `ip -batch` would split: kept, and said in a comment.
  inNs(node.ns, 'ip', ['link', 'add', 'v$(touch)`x`', 'type', 'veth', 'peer', 'name', 'v-peer-q']);
  inNs(node.ns, 'ip', ['link', 'set', 'v$(touch)`x`', 'master', 'cni0']);
}

describe('a plan whose names would inject commands', () => {
  it('run by bash, runs nothing injected and reaches the same end state as run', () => {
    const a = dirtyNode('inject-a');
    const b = dirtyNode('inject-b');
    makeHostile(a);
    makeHostile(b);
    const plan = runCli(b, ['plan', ...nodeArgs(b)]);
    expect(plan.code, plan.stderr).toBe(0);
    // One operand per line in the script: the hostile names are quoted words of their own.
    expect(plan.stdout).toMatch(/^rm -f -- \\$/m);
    expect(plan.stdout).toContain("\n  $'");
    expect(plan.stdout).toContain("\\xff\\xfe.conflist'");
    expect(plan.stdout).toMatch(/^# kept v\$\(touch\)`x`: its name cannot be passed safely to ip -batch$/m);
    const work = path.join(path.dirname(b.root), 'cwd');
    fs.mkdirSync(work);
    const script = path.join(path.dirname(b.root), 'plan.sh');
    fs.writeFileSync(script, plan.stdout);
    execFileSync('nsenter', [`--net=/run/netns/${b.ns}`, 'bash', script], { env: cliEnv(b), cwd: work, stdio: 'pipe' });
    expect(fs.readdirSync(work)).toEqual([]);
    const r = runCli(a, ['run', '--yes', ...nodeArgs(a)]);
    expect(r.code, r.stderr).toBe(0);
    const after = nodeOnly(snapshot(b));
    expect(after).toEqual(nodeOnly(snapshot(a)));
    expect(after.files.filter((f) => /injected|conflist|results\/cbr0/.test(f))).toEqual([]);
    expect(after.links.filter((l) => l.startsWith('v$(touch)`x`'))).toHaveLength(1);
    const find = spawnSync('find', [path.dirname(a.root), path.dirname(b.root), '-name', 'injected*'], { encoding: 'utf8' });
    expect(find.stdout).toBe('');
  });
});

describe('a Flannel config whose file name is not UTF-8', () => {
  it('is removed and backed up byte for byte', () => {
    const node = dirtyNode('bytes', { pods: 1 });
    const name = Buffer.concat([
      Buffer.from(path.join(node.root, 'etc/cni/net.d/10-fl')),
      Buffer.from([0xe9, 0xff]),
      Buffer.from('.conflist'),
    ]);
    fs.renameSync(path.join(node.root, CONF), name);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(name)).toBe(false);
    const backup = JSON.parse(r.stdout).backup as string;
    const listed = execFileSync('tar', ['--quoting-style=literal', '-tf', path.join(backup, 'files.tar')]);
    expect(
      listed.includes(Buffer.concat([Buffer.from('etc/cni/net.d/10-fl'), Buffer.from([0xe9, 0xff]), Buffer.from('.conflist\n')])),
    ).toBe(true);
    const out = path.join(path.dirname(node.root), 'untar');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xf', path.join(backup, 'files.tar'), '-C', out]);
    expect(
      fs.readFileSync(
        Buffer.concat([Buffer.from(path.join(out, 'etc/cni/net.d/10-fl')), Buffer.from([0xe9, 0xff]), Buffer.from('.conflist')]),
        'utf8',
      ),
    ).toBe(FLANNEL_CONFLIST);
  });
});

describe('subnet.env', () => {
  const HOSTGW = '10.244.2.0/24 via 192.168.1.12 dev eth0';
  it.each([
    ['quoted', 'FLANNEL_NETWORK=\'10.244.0.0/16\'\nFLANNEL_SUBNET="10.244.1.1/24"\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n'],
    ['exported', 'export FLANNEL_NETWORK=10.244.0.0/16\nexport FLANNEL_SUBNET=10.244.1.1/24\n'],
    [
      'with CRLF, quotes and comments',
      "# by hand\r\nFLANNEL_NETWORK='10.244.0.0/16' # the cluster\r\nFLANNEL_SUBNET=10.244.1.1/24\r\nFLANNEL_MTU=1450\r\n",
    ],
  ])('written %s, as flanneld reads it: the host-gw route goes', (_, text) => {
    const node = dirtyNode('env', { pods: 1, ipv6: false });
    fs.writeFileSync(path.join(node.root, 'run/flannel/subnet.env'), text);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).unreadable).toEqual([]);
    expect(inNs(node.ns, 'ip', ['-4', 'route', 'show'])).not.toContain(HOSTGW);
  });

  it('garbled: a warning in the plan, on stderr and in the report names what stays; the host-gw route stays', () => {
    const node = dirtyNode('env-bad', { pods: 1, ipv6: false });
    fs.writeFileSync(path.join(node.root, 'run/flannel/subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\n\u0000garbage\n');
    const warning =
      '/run/flannel/subnet.env: line 2: not KEY=VALUE: \u0000garbage; host-gw routes into the pod network and untagged legacy iptables rules will not be removed (pass --pod-cidr)';
    const plan = runCli(node, ['plan', ...nodeArgs(node)]);
    expect(plan.stdout).toContain(`# could not read: ${warning.replace('\u0000', '\\x00')}\n`);
    expect(plan.stderr).toContain('could not read /run/flannel/subnet.env: line 2');
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).unreadable).toEqual([warning]);
    expect(inNs(node.ns, 'ip', ['-4', 'route', 'show'])).toContain(HOSTGW);
  });
});
