// The fake host is only worth its tests if it behaves like the node: these pin the behaviours the
// other suites lean on (fail closed, ip -batch stopping at the first failing line, iptables-restore
// committing table by table, rm never following a symlink).
import { describe, expect, it } from 'vitest';
import { CommandFailedError } from '../../src/errors.js';
import { FakeHost } from '../../src/host/fake.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';

const NAT = [
  '*nat',
  ':PREROUTING ACCEPT [0:0]',
  ':POSTROUTING ACCEPT [0:0]',
  ':A - [0:0]',
  ':B - [0:0]',
  '-A POSTROUTING -m comment --comment "x y" -j A',
  '-A A -j B',
  'COMMIT',
];
const FILTER = ['*filter', ':INPUT ACCEPT [0:0]', ':F - [0:0]', '-A INPUT -j F', 'COMMIT'];

async function failure(p: Promise<unknown>): Promise<CommandFailedError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CommandFailedError);
  return err as CommandFailedError;
}

describe('FakeHost reads', () => {
  it('answers the queries cni-sweep issues, as the tools print them', async () => {
    const h = foreignNode();
    const links = await h.query(['ip', '-j', '-d', 'link', 'show']);
    expect(JSON.parse(links!.stdout).map((l: { ifname: string }) => l.ifname)).toEqual([
      'lo',
      'eth0',
      'docker0',
      'site-br',
      'vethsite',
      'vethsite-p',
    ]);
    const r6 = await h.query(['ip', '-j', '-6', 'route', 'show', 'table', 'main']);
    expect(JSON.parse(r6!.stdout).map((r: { dst: string }) => r.dst)).toEqual(['fd00:1::/64', 'fd00:77::/64', 'fe80::/64']);
    expect((await h.query(['iptables-nft-save']))!.stdout).toContain('-A SITE-FW -s 10.244.0.0/16 -d 192.168.50.0/24 -j DROP\n');
    expect(await h.query(['iptables-legacy-save'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(JSON.parse((await h.query(['nft', '-j', 'list', 'tables']))!.stdout).nftables[1]).toEqual({
      table: { family: 'inet', name: 'site-filter', handle: 1 },
    });
    // As nft 1.0.6 lists every table: iptables-nft's own are nftables tables of the ip family.
    expect((await h.query(['nft', 'list', 'flowtables']))!.stdout).toBe('table ip filter {\n}\ntable inet site-filter {\n}\n');
  });

  it('systemctl is-active prints one state per unit and exits 3 when any is not active', async () => {
    const h = foreignNode();
    expect(await h.query(['systemctl', 'is-active', 'kubelet.service', 'crio.service'])).toEqual({
      code: 3,
      stdout: 'active\ninactive\n',
      stderr: '',
    });
    expect(await h.query(['systemctl', 'is-active', 'kubelet.service'])).toEqual({ code: 0, stdout: 'active\n', stderr: '' });
  });

  it('returns null for a binary that is not installed, and throws on any other query', async () => {
    const h = foreignNode().removeBinary('nft', 'iptables-legacy-save');
    expect(await h.query(['nft', '-j', 'list', 'tables'])).toBeNull();
    expect(await h.query(['iptables-legacy-save'])).toBeNull();
    await expect(h.query(['ip', '-j', 'addr', 'show'])).rejects.toThrow('FakeHost: unsupported query: ip -j addr show');
    await expect(h.query(['iptables-nft-save', '-t', 'nat'])).rejects.toThrow(/unsupported query/);
    expect(h.queries).toHaveLength(4);
  });

  it('reads files through symlinks but reports a symlink as one', async () => {
    const h = new FakeHost()
      .writeFile('/data/cni/a.conf', '{}')
      .symlink('/etc/cni/net.d', '/data/cni')
      .symlink('/etc/x.conf', '../data/cni/a.conf');
    expect(await h.readFile('/etc/cni/net.d/a.conf')).toBe('{}');
    expect(await h.readFile('/etc/x.conf')).toBe('{}');
    expect(await h.entryType('/etc/cni/net.d')).toBe('symlink');
    expect(await h.readDir('/etc/cni/net.d')).toEqual([{ name: 'a.conf', type: 'file' }]);
    expect(await h.readDir('/etc')).toEqual([
      { name: 'cni', type: 'dir' },
      { name: 'x.conf', type: 'symlink' },
    ]);
    expect(await h.readFile('/nope')).toBeNull();
    expect(await h.readDir('/etc/x.conf/sub')).toBeNull();
  });
});

describe('FakeHost writes', () => {
  it('throws on a command cni-sweep does not emit, naming it, and records the call', async () => {
    const h = foreignNode();
    await expect(h.apply({ argv: ['iptables', '-F'] })).rejects.toThrow('FakeHost: unsupported command: iptables -F');
    await expect(h.apply({ argv: ['iptables-nft-restore'], stdin: '*nat\nCOMMIT\n' })).rejects.toThrow(/--noflush -w/);
    await expect(h.apply({ argv: ['ip', '-batch', '-'], stdin: 'link set eth0 up\n' })).rejects.toThrow(
      'unsupported ip -batch line "link set eth0 up"',
    );
    await expect(h.apply({ argv: ['nft', '-f', '-'], stdin: 'flush ruleset\n' })).rejects.toThrow(/unsupported nft line/);
    await expect(h.apply({ argv: ['rm', '-rf', '/etc'] })).rejects.toThrow(/unsupported command/);
    expect(h.calls.map((c) => c.argv[0])).toEqual(['iptables', 'iptables-nft-restore', 'ip', 'nft', 'rm']);
    expect(h.linkNames()).toContain('eth0');
  });

  it('fails like the shell when the binary is missing', async () => {
    const h = foreignNode().removeBinary('nft');
    const e = await failure(h.apply({ argv: ['nft', '-f', '-'], stdin: 'delete table inet site-filter\n' }));
    expect(e.exitCode).toBeNull();
    expect(e.message).toBe('nft -f - not found on PATH');
    expect(h.nftTables).toHaveLength(1);
  });

  it('ip -batch stops at the first failing line and keeps the lines before it', async () => {
    const h = foreignNode();
    const e = await failure(
      h.apply({
        argv: ['ip', '-batch', '-'],
        stdin: 'link delete site-br\nroute delete 10.9.9.0/24 via 192.168.1.1 dev eth0\nlink delete docker0\n',
      }),
    );
    expect(e.exitCode).toBe(1);
    expect(e.stderr).toBe('RTNETLINK answers: No such process\nCommand failed -:2\n');
    expect(h.linkNames()).toEqual(['lo', 'eth0', 'docker0', 'vethsite', 'vethsite-p']);
  });

  it('deleting a link takes its routes and its veth peer along, and frees the ports of a bridge', async () => {
    const h = foreignNode();
    await h.apply({ argv: ['ip', '-batch', '-'], stdin: 'link delete docker0\n' });
    expect(h.routes[4].map((r) => r.dst)).toEqual(['default', '192.168.1.0/24', '192.168.50.0/24']);
    expect(h.link('vethsite')!.master).toBeUndefined();
    await h.apply({ argv: ['ip', '-batch', '-'], stdin: 'link delete vethsite\n' });
    expect(h.linkNames()).toEqual(['lo', 'eth0', 'site-br']);
    const e = await failure(h.apply({ argv: ['ip', '-batch', '-'], stdin: 'link delete vethsite-p\n' }));
    expect(e.stderr).toBe('Cannot find device "vethsite-p"\nCommand failed -:1\n');
  });

  it('route delete matches what the line names and treats what it leaves out as any', async () => {
    const h = foreignNode();
    const del = (line: string) => h.apply({ argv: ['ip', '-batch', '-'], stdin: `${line}\n` });
    await failure(del('route delete 192.168.50.0/24 via 192.168.1.2 dev eth0'));
    await failure(del('route delete fd00:77::/64 via fd00:1::1 dev eth0 metric 1'));
    await failure(del('route delete blackhole 192.168.50.0/24'));
    expect(h.routes[4]).toHaveLength(4);
    await del('route delete 192.168.50.0/24');
    await del('route delete fd00:77::/64 via fd00:1::1 dev eth0 metric 1024');
    expect(h.routes[4].map((r) => r.dst)).toEqual(['default', '172.17.0.0/16', '192.168.1.0/24']);
    expect(h.routes[6].map((r) => r.dst)).toEqual(['fd00:1::/64', 'fe80::/64']);
  });

  it('iptables-restore -D matches a rule by its tokens, and a failing table stays untouched while earlier tables commit', async () => {
    const h = new FakeHost().setIptables('iptables-legacy', [...FILTER, ...NAT, ''].join('\n'));
    const e = await failure(
      h.apply({
        argv: ['iptables-legacy-restore', '--noflush', '-w'],
        stdin: '*filter\n-D INPUT -j F\n-X F\nCOMMIT\n*nat\n-D POSTROUTING -m comment --comment "x y" -j A\n-X A\nCOMMIT\n',
      }),
    );
    expect(e.exitCode).toBe(1);
    expect(e.stderr).toBe('iptables-legacy-restore: line 7 failed: -X A: Directory not empty\n');
    expect(h.chains('iptables-legacy', 'filter')).toEqual(['INPUT']);
    expect(h.rules('iptables-legacy', 'nat')).toEqual(['-A POSTROUTING -m comment --comment "x y" -j A', '-A A -j B']);
  });

  it('iptables-restore refuses to delete a chain that is still referenced, and a rule that does not exist', async () => {
    const h = new FakeHost().setIptables('iptables-nft', [...NAT, ''].join('\n'));
    const restore = (stdin: string) => h.apply({ argv: ['iptables-nft-restore', '--noflush', '-w'], stdin });
    expect((await failure(restore('*nat\n-F A\n-X A\nCOMMIT\n'))).stderr).toMatch(/line 3 failed: -X A: Too many links/);
    expect((await failure(restore('*nat\n-D POSTROUTING -m comment --comment x y -j A\nCOMMIT\n'))).stderr).toMatch(/Bad rule/);
    expect((await failure(restore('*nat\n-F NOPE\nCOMMIT\n'))).stderr).toMatch(/No chain\/target\/match by that name/);
    expect(h.rules('iptables-nft', 'nat')).toHaveLength(2);
    await restore('*nat\n-D POSTROUTING -m comment --comment "x y" -j A\n-F A\n-F B\n-X A\n-X B\nCOMMIT\n');
    expect(h.iptablesSave('iptables-nft')).toBe(
      '# Generated by iptables-nft-save v1.8.9 (nf_tables)\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n# Completed\n',
    );
  });

  it('nft -f is all or nothing', async () => {
    const h = dirtyFlannelNode().host;
    const e = await failure(h.apply({ argv: ['nft', '-f', '-'], stdin: 'delete table ip flannel-ipv4\ndelete table ip flannel-ipv9\n' }));
    expect(e.stderr).toContain('delete table ip flannel-ipv9');
    expect(h.nftTables.map((t) => t.name)).toEqual(['flannel-ipv4', 'flannel-ipv6', 'site-filter']);
  });

  it('rm -rf removes a symlink, never what it points to, and only paths under the root', async () => {
    const h = new FakeHost({ root: '/srv/node' })
      .writeFile('/data/flannel/keep', 'x')
      .symlink('/var/lib/cni/flannel', '/srv/node/data/flannel')
      .writeFile('/var/lib/cni/networks/cbr0/10.244.1.2', 'id');
    await h.apply({
      argv: ['rm', '-rf', '--', '/srv/node/var/lib/cni/flannel', '/srv/node/var/lib/cni/networks/cbr0', '/srv/node/not-there'],
    });
    expect(h.paths()).toEqual([
      '/data/',
      '/data/flannel/',
      '/data/flannel/keep',
      '/var/',
      '/var/lib/',
      '/var/lib/cni/',
      '/var/lib/cni/networks/',
    ]);
    await expect(h.apply({ argv: ['rm', '-rf', '--', '/var/lib/cni'] })).rejects.toThrow(
      'FakeHost: /var/lib/cni is outside the root /srv/node',
    );
  });

  it('rm -f will not remove a directory, nor a file that is still mounted', async () => {
    const h = new FakeHost().mkdir('/run/netns').addNetns('cni-1').addNetns('cni-2', { mounted: false });
    const e = await failure(h.apply({ argv: ['rm', '-f', '--', '/run/netns', '/run/netns/cni-1', '/run/netns/cni-2'] }));
    expect(e.stderr).toBe(
      "rm: cannot remove '/run/netns': Is a directory\nrm: cannot remove '/run/netns/cni-1': Device or resource busy\n",
    );
    expect(h.paths()).toEqual(['/run/', '/run/netns/', '/run/netns/cni-1']);
    await h.apply({ argv: ['umount', '--lazy', '--', '/run/netns/cni-1'] });
    expect(h.mounts.size).toBe(0);
    expect((await failure(h.apply({ argv: ['umount', '--lazy', '--', '/run/netns/cni-1'] }))).exitCode).toBe(32);
  });

  it('systemctl and kubectl change unit states and cordoning', async () => {
    const h = foreignNode();
    await h.apply({ argv: ['systemctl', 'stop', 'kubelet.service'] });
    expect(h.units.get('kubelet.service')).toBe('inactive');
    expect((await failure(h.apply({ argv: ['systemctl', 'start', 'nope.service'] }))).exitCode).toBe(5);
    await h.apply({ argv: ['kubectl', '--kubeconfig', '/k', 'drain', 'node-1', '--ignore-daemonsets'] });
    expect([...h.cordoned]).toEqual(['node-1']);
    await h.apply({ argv: ['kubectl', '--kubeconfig', '/k', 'uncordon', 'node-1'] });
    expect(h.cordoned.size).toBe(0);
  });

  it('failOn makes a matching call fail and leaves the node as it was', async () => {
    const h = foreignNode().failOn((s) => s.argv[1] === 'stop', { code: 1, stderr: 'Job for kubelet.service canceled.\n' });
    const e = await failure(h.apply({ argv: ['systemctl', 'stop', 'kubelet.service'] }));
    expect(e.message).toBe('systemctl stop kubelet.service exited 1: Job for kubelet.service canceled.');
    expect(h.units.get('kubelet.service')).toBe('active');
  });

  it('saves command output where a step says, and only for the reads the backup makes', async () => {
    const h = dirtyFlannelNode().host;
    await h.apply({ argv: ['mkdir', '-p', '-m', '0700', '--', '/b/x', '/b/x/fw'] });
    await h.apply({ argv: ['iptables-nft-save'], stdoutTo: '/b/x/fw/v4.save' });
    await h.apply({ argv: ['cat'], stdin: 'hello\n', stdoutTo: '/b/x/note' });
    await h.apply({ argv: ['nft', 'list', 'table', 'ip', 'flannel-ipv4'], stdoutTo: '/b/x/fw/t.nft' });
    await h.apply({ argv: ['sha256sum', '--', 'note'], cwd: '/b/x', stdoutTo: '/b/x/SUMS' });
    expect(h.fileAt('/b/x/fw/v4.save')).toBe(h.iptablesSave('iptables-nft'));
    expect(h.fileAt('/b/x/fw/t.nft')).toBe('table ip flannel-ipv4 {\n}\n');
    expect(h.fileAt('/b/x/SUMS')).toBe('5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  note\n');
    await expect(h.apply({ argv: ['cat'], stdin: 'x', stdoutTo: '/nowhere/file' })).rejects.toThrow(/ENOENT/);
    await expect(h.apply({ argv: ['ip', '-j', 'addr', 'show'], stdoutTo: '/b/x/a' })).rejects.toThrow(/unsupported command with stdoutTo/);
    await expect(h.apply({ argv: ['iptables-nft-save'] })).rejects.toThrow(/unsupported command/);
  });

  it('tar keeps what it archives, symlinks as links, and puts back only what is missing', async () => {
    const h = new FakeHost()
      .writeFile('/etc/cni/net.d/10-flannel.conflist', 'A')
      .writeFile('/run/flannel/subnet.env', 'B', 0o600)
      .symlink('/run/flannel/link', '/elsewhere');
    await h.apply({ argv: ['tar', '-C', '/', '-cpf', '/tmp.tar', '--', 'etc/cni/net.d/10-flannel.conflist', 'run/flannel'] });
    await h.apply({ argv: ['rm', '-rf', '--', '/run/flannel', '/etc/cni/net.d/10-flannel.conflist'] });
    h.writeFile('/etc/cni/net.d/10-flannel.conflist', 'NEW');
    await h.apply({ argv: ['tar', '-C', '/', '-xpf', '/tmp.tar', '--skip-old-files'] });
    expect(await h.readFile('/etc/cni/net.d/10-flannel.conflist')).toBe('NEW');
    expect(h.fs.get('/run/flannel/subnet.env')).toEqual({ type: 'file', content: 'B', mode: 0o600 });
    expect(await h.entryType('/run/flannel/link')).toBe('symlink');
    const e = await failure(h.apply({ argv: ['tar', '-C', '/', '-cpf', '/t2.tar', '--', 'no/such'] }));
    expect(e.exitCode).toBe(2);
  });

  it('iptables-restore puts rules back with -I at a position and -A, and a chain declared again is flushed', async () => {
    const h = new FakeHost().setIptables('iptables-nft', [...NAT, ''].join('\n'));
    await h.apply({
      argv: ['iptables-nft-restore', '--noflush', '-w'],
      stdin: '*nat\n:C - [0:0]\n-A C -j RETURN\n-I POSTROUTING 1 -j C\n-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE\nCOMMIT\n',
    });
    expect(h.rules('iptables-nft', 'nat')).toEqual([
      '-A POSTROUTING -j C',
      '-A POSTROUTING -m comment --comment "x y" -j A',
      '-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE',
      '-A A -j B',
      '-A C -j RETURN',
    ]);
    await h.apply({ argv: ['iptables-nft-restore', '--noflush', '-w'], stdin: '*nat\n:A - [0:0]\nCOMMIT\n' });
    expect(h.rules('iptables-nft', 'nat').filter((r) => r.startsWith('-A A '))).toEqual([]);
    const e = await failure(
      h.apply({
        argv: ['iptables-nft-restore', '--noflush', '-w'],
        stdin: '*nat\n-I POSTROUTING 9 -j ACCEPT\n-A POSTROUTING -j NOPE\nCOMMIT\n',
      }),
    );
    expect(e.stderr).toBe('iptables-nft-restore: line 2 failed: -I POSTROUTING 9 -j ACCEPT: Index of insertion too big\n');
  });

  it('a device set down or with its addresses flushed loses its routes; an ipset still matched cannot be destroyed', async () => {
    const h = dirtyFlannelNode().host;
    await h.apply({ argv: ['ip', '-batch', '-'], stdin: 'address flush dev cni0\nlink set flannel.1 down\n' });
    expect(h.addrs.has('cni0')).toBe(false);
    expect(h.link('flannel.1')!.flags).toEqual(['BROADCAST', 'MULTICAST']);
    expect(h.routes[4].map((r) => r.dst)).toEqual(['default', '10.244.2.0/24', '172.17.0.0/16', '192.168.1.0/24', '192.168.50.0/24']);
    h.ipsets = ['cali40all-ipam-pools', 'KUBE-X'];
    h.setIptables(
      'iptables-legacy',
      '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set cali40all-ipam-pools src -j DROP\nCOMMIT\n',
    );
    const e = await failure(h.apply({ argv: ['ipset', 'restore'], stdin: 'destroy cali40all-ipam-pools\n' }));
    expect(e.stderr).toBe('ipset v7.17: Error in line 1: Set cannot be destroyed: it is in use by a kernel component\n');
    h.iptables.delete('iptables-legacy');
    await h.apply({ argv: ['ipset', 'restore'], stdin: 'destroy cali40all-ipam-pools\n' });
    expect(h.ipsets).toEqual(['KUBE-X']);
  });

  it('a rule matching a missing ipset is refused with its batch; ipset save and restore -file bring a set back, never over an existing one', async () => {
    const h = foreignNode();
    h.ipsets = ['KUBE-X'];
    const rule = '*filter\n-A INPUT -m set --match-set cali40all-ipam-pools src -j DROP\nCOMMIT\n';
    const e = await failure(h.apply({ argv: ['iptables-nft-restore', '--noflush', '-w'], stdin: rule }));
    expect(e.exitCode).toBe(2);
    expect(e.stderr).toContain("Set cali40all-ipam-pools doesn't exist.");
    expect(h.iptablesSave('iptables-nft')).not.toContain('cali40all-ipam-pools');
    h.writeFile('/b', '', 0o600);
    const missing = await failure(h.apply({ argv: ['ipset', 'save', 'cali40all-ipam-pools'], stdoutTo: '/b' }));
    expect(missing.stderr).toBe('ipset v7.17: The set with the given name does not exist\n');
    await h.apply({ argv: ['ipset', 'save', 'KUBE-X'], stdoutTo: '/b' });
    expect(h.fileAt('/b')).toBe('create KUBE-X hash:net family inet hashsize 1024 maxelem 65536\n');
    const again = await failure(h.apply({ argv: ['ipset', 'restore', '-file', '/b'] }));
    expect(again.stderr).toBe('ipset v7.17: Error in line 1: Set cannot be created: set with the same name already exists\n');
    h.writeFile('/s', 'create cali40all-ipam-pools hash:net family inet\nadd cali40all-ipam-pools 172.20.0.0/16\n', 0o600);
    await h.apply({ argv: ['ipset', 'restore', '-file', '/s'] });
    expect(h.ipsets).toEqual(['KUBE-X', 'cali40all-ipam-pools']);
    await h.apply({ argv: ['iptables-nft-restore', '--noflush', '-w'], stdin: rule });
    expect(h.iptablesSave('iptables-nft')).toContain('--match-set cali40all-ipam-pools');
    h.writeFile('/odd', 'flush KUBE-X\n', 0o600);
    await expect(h.apply({ argv: ['ipset', 'restore', '-file', '/odd'] })).rejects.toThrow(/unsupported ipset line "flush KUBE-X"/);
  });

  it('unloading a module takes its devices along, and refuses while the module is in use', async () => {
    const h = foreignNode().addLink({ ifname: 'tunl0', linkinfo: { info_kind: 'ipip' } });
    h.modules.set('ipip', { refs: 1, users: 'xfrm' });
    expect((await h.query(['lsmod']))!.stdout).toBe('Module                  Size  Used by\nipip                    16384  1 xfrm\n');
    expect((await failure(h.apply({ argv: ['modprobe', '-r', 'ipip'] }))).stderr).toBe('modprobe: FATAL: Module ipip is in use.\n');
    h.modules.set('ipip', { refs: 0 });
    await h.apply({ argv: ['modprobe', '-r', 'ipip'] });
    expect(h.link('tunl0')).toBeUndefined();
  });
});
