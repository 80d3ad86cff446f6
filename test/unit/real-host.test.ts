// The real host's memory of listings: a listing read once is kept until a change that can alter
// it, and read again after one. Stand-in commands on PATH log each call and print how many calls
// came before, so a kept answer and a fresh one can be told apart.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { RealHost } from '../../src/host/real.js';
import { startEarly } from '../../src/host/early.js';
import { buildSync } from 'esbuild';

const REPO = path.resolve(__dirname, '../..');
import { decodeName } from '../../src/util/names.js';
import type { CommandFailedError } from '../../src/errors.js';

const COMMANDS = [
  'ip',
  'nsenter',
  'unshare',
  'nft',
  'iptables-nft-save',
  'ip6tables-nft-save',
  'iptables-nft-restore',
  'umount',
  'systemctl',
];

let dir: string;
let log: string;
const saved = { PATH: process.env.PATH, STANDIN_LOG: process.env.STANDIN_LOG };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-realhost-'));
  log = path.join(dir, 'calls.log');
  fs.writeFileSync(log, '');
  fs.mkdirSync(path.join(dir, 'bin'));
  for (const c of COMMANDS) {
    fs.writeFileSync(
      path.join(dir, 'bin', c),
      '#!/bin/sh\ncat >/dev/null\necho "${0##*/} $*" >> "$STANDIN_LOG"\nwc -l < "$STANDIN_LOG"\n',
      { mode: 0o755 },
    );
  }
  process.env.PATH = `${path.join(dir, 'bin')}:${saved.PATH}`;
  process.env.STANDIN_LOG = log;
});

afterEach(() => {
  process.env.PATH = saved.PATH;
  process.env.STANDIN_LOG = saved.STANDIN_LOG;
  fs.rmSync(dir, { recursive: true, force: true });
});

const LINKS = 'ip -j -d link show';
const ROUTES = 'ip -j -4 route show table main';
const POD_LINKS = 'nsenter --net=/run/netns/cni-1 ip -j -d link show';
// The netns phase's read of every namespace file's id (its sh -c script shortened: only argv[0] counts here).
const NETNS_IDS = 'unshare --mount --propagation private -- sh -c list sh /run/netns';
const NFT_IP = 'nft list table ip flannel-ipv4';
const NFT_NETDEV = 'nft list table netdev ingress-filter';
const IPT = 'iptables-nft-save';
const IP6T = 'ip6tables-nft-save';
const LISTINGS = [LINKS, ROUTES, POD_LINKS, NETNS_IDS, NFT_IP, NFT_NETDEV, IPT, IP6T];

/** Reads every listing; returns those that actually ran a command for it. */
async function readAll(host: RealHost): Promise<string[]> {
  const before = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
  for (const l of LISTINGS) expect((await host.query(l.split(' ')))!.code).toBe(0);
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(before)
    .map((l) => l.trim())
    .sort();
}
const sorted = (...xs: string[]) => [...xs].sort();

describe('RealHost listings', () => {
  it('keeps a listing until a change that declares it may alter it, and reads it again after one', async () => {
    const host = new RealHost(dir);
    expect(await readAll(host)).toEqual(sorted(...LISTINGS));
    expect(await readAll(host)).toEqual([]);

    // Files: no listing shows them; a look inside a pod namespace goes through its file. Not the
    // namespace ids: only the netns phase removes namespace files, and its steps declare namespaces.
    fs.writeFileSync(path.join(dir, 'conf'), '');
    await host.apply({ argv: ['rm', '-f', '--', path.join(dir, 'conf')], touches: ['files'] });
    expect(await readAll(host)).toEqual(sorted(POD_LINKS));

    // Links: what ip and nsenter show, and netdev tables (their chains go with the device); not
    // the iptables dumps, nor an nftables table of another family, nor the namespace ids (a peer
    // namespace keeps its id when the link that referred to it goes).
    await host.apply({ argv: ['ip', '-batch', '-'], stdin: 'link set dev veth1 group 7\nlink delete group 7\n', touches: ['links'] });
    expect(await readAll(host)).toEqual(sorted(LINKS, ROUTES, POD_LINKS, NFT_NETDEV));
    await host.apply({ argv: ['umount', '--lazy', '--', '/run/netns/cni-1'], touches: ['namespaces'] });
    expect(await readAll(host)).toEqual(sorted(LINKS, ROUTES, POD_LINKS, NETNS_IDS, NFT_NETDEV));

    // Routes alone: the route listings.
    await host.apply({
      argv: ['ip', '-batch', '-'],
      stdin: 'route delete 10.244.1.0/24 via 192.168.1.11 dev eth0\nroute delete fd00:10:244:1::/64 via fd00::11 dev eth0\n',
      touches: ['routes'],
    });
    expect(await readAll(host)).toEqual([ROUTES]);

    // A firewall batch: the firewall listings, of both backends and families.
    await host.apply({ argv: ['iptables-nft-restore', '--noflush', '-w'], stdin: '*nat\nCOMMIT\n', touches: ['firewall'] });
    expect(await readAll(host)).toEqual(sorted(IP6T, IPT, NFT_IP, NFT_NETDEV));
    await host.apply({ argv: ['nft', '-f', '-'], stdin: 'delete table ip flannel-ipv4\n', touches: ['nft'] });
    expect(await readAll(host)).toEqual(sorted(IP6T, IPT, NFT_IP, NFT_NETDEV));

    // Anything else (a service stopped, ...) may have changed anything.
    await host.apply({ argv: ['systemctl', 'stop', 'kubelet.service'] });
    expect(await readAll(host)).toEqual(sorted(...LISTINGS));

    // Fail safe: a step that declares nothing (a phase that does not say) may have changed
    // anything, whatever its argv looks like.
    await host.apply({ argv: ['ip', '-batch', '-'], stdin: 'route delete 10.244.1.0/24 via 192.168.1.11 dev eth0\n' });
    expect(await readAll(host)).toEqual(sorted(...LISTINGS));
    await host.apply({ argv: ['rm', '-f', '--', path.join(dir, 'conf')] });
    expect(await readAll(host)).toEqual(sorted(...LISTINGS));
  });

  it('a kept answer is the one read before; a read after the change sees the change', async () => {
    const host = new RealHost(dir);
    const first = (await host.query(['iptables-nft-save']))!.stdout;
    await host.apply({ argv: ['ip', '-batch', '-'], stdin: 'link delete group 7\n', touches: ['links'] });
    expect((await host.query(['iptables-nft-save']))!.stdout).toBe(first);
    await host.apply({ argv: ['iptables-nft-restore', '--noflush', '-w'], stdin: '*filter\nCOMMIT\n', touches: ['firewall'] });
    expect(Number((await host.query(['iptables-nft-save']))!.stdout)).toBeGreaterThan(Number(first));
  });

  it("ip's flags in another order ask for the same listing: the backup's `ip -d -j link show` is answered by inspection's read", async () => {
    const host = new RealHost(dir);
    const first = (await host.query(['ip', '-j', '-d', 'link', 'show']))!;
    expect(await host.query(['ip', '-d', '-j', 'link', 'show'])).toEqual(first);
    expect(await host.apply({ argv: ['ip', '-d', '-j', 'link', 'show'], touches: ['own'] })).toEqual(first);
    // Only the flags' order: another listing, or flags after the object, is another read.
    await host.query(['ip', '-d', '-j', 'addr', 'show']);
    await host.query(['ip', 'link', 'show', '-d']);
    expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toEqual(['ip -j -d link show', 'ip -d -j addr show', 'ip link show -d']);
    // A change to the links makes both forms read again, once.
    await host.apply({ argv: ['ip', '-batch', '-'], stdin: 'link delete group 7\n', touches: ['links'] });
    expect((await host.query(['ip', '-d', '-j', 'link', 'show']))!.stdout).not.toBe(first.stdout);
    expect(await host.query(['ip', '-j', '-d', 'link', 'show'])).toEqual(await host.query(['ip', '-d', '-j', 'link', 'show']));
    expect(
      fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.includes('link show -d') || /^ip -. -. link/.test(l)),
    ).toEqual(['ip -j -d link show', 'ip link show -d', 'ip -d -j link show']);
  });

  it('a read-only step (the backup copying what it will keep) keeps every listing', async () => {
    const host = new RealHost(dir);
    await readAll(host);
    await host.apply({ argv: ['systemctl', 'cat', 'kubelet.service'] }, { readOnly: true });
    expect(await readAll(host)).toEqual([]);
    // Declared: a step that touches only cni-sweep's own files.
    await host.apply({ argv: ['systemctl', 'cat', 'kubelet.service'], touches: ['own'] });
    expect(await readAll(host)).toEqual([]);
  });
});

describe("the loader's early reads (host/early.ts)", () => {
  it('answer the first host that asks, once: a listing they read is not run again; one they did not read runs', async () => {
    startEarly([[IPT], LINKS.split(' '), ['not-installed-anywhere']]);
    const host = new RealHost(dir);
    // Each read once, by the early batch (the stand-ins log their calls): not again for the host.
    expect((await host.query([IPT]))!.code).toBe(0);
    expect((await host.query(['ip', '-d', '-j', 'link', 'show']))!.code).toBe(0);
    // Not on PATH: answered as a missing command, not from the batch's exit 127.
    expect(await host.query(['not-installed-anywhere'])).toBeNull();
    // Not among them: the host runs it.
    expect((await host.query([IP6T]))!.stdout).toBe('3\n');
    expect(
      fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.trim())
        .sort(),
    ).toEqual(sorted(IP6T, IPT, LINKS));
    // Taken: a second host reads for itself.
    const other = new RealHost(dir);
    expect((await other.query([IPT]))!.stdout).toBe('4\n');
  });

  it('not taken, they do not keep the process alive; taken, the process waits for them', () => {
    const slow = ['sh', '-c', 'sleep 2; echo late'];
    const run = (take: boolean) => {
      const entry = path.join(dir, `early-${String(take)}.ts`);
      fs.writeFileSync(
        entry,
        [
          `import { startEarly } from ${JSON.stringify(path.join(REPO, 'src/host/early.ts'))};`,
          `import { RealHost } from ${JSON.stringify(path.join(REPO, 'src/host/real.ts'))};`,
          `startEarly([${JSON.stringify(slow)}]);`,
          take ? `void new RealHost('/').query(${JSON.stringify(slow)}).then((r) => console.log(r?.stdout.trim()));` : '',
        ].join('\n'),
      );
      const out = path.join(dir, `early-${String(take)}.cjs`);
      buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'silent' });
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [out], { encoding: 'utf8' });
      return { out: r.stdout.trim(), err: r.stderr, ms: Date.now() - t0 };
    };
    const free = run(false);
    expect(free).toMatchObject({ out: '', err: '' });
    expect(free.ms).toBeLessThan(1500);
    const taken = run(true);
    expect(taken).toMatchObject({ out: 'late', err: '' });
    expect(taken.ms).toBeGreaterThanOrEqual(2000);
  });
});

describe('RealHost iptables-legacy-save', () => {
  // What the kernel lists in /proc/net/ip_tables_names is what iptables-legacy-save dumps.
  const withTables = (names: string | null) => {
    const procNet = path.join(dir, 'proc-net');
    fs.mkdirSync(procNet, { recursive: true });
    if (names !== null) fs.writeFileSync(path.join(procNet, 'ip_tables_names'), names);
    fs.writeFileSync(
      path.join(dir, 'bin', 'iptables-legacy-save'),
      '#!/bin/sh\necho "iptables-legacy-save" >> "$STANDIN_LOG"\nprintf "*nat\\nCOMMIT\\n"\n',
      { mode: 0o755 },
    );
    return new RealHost(dir, undefined, procNet);
  };
  const ran = () => fs.readFileSync(log, 'utf8').includes('iptables-legacy-save');

  it('with no legacy table listed, answers what the save would print (nothing) without running it', async () => {
    expect(await withTables('').query(['iptables-legacy-save'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(ran()).toBe(false);
  });

  it('with the legacy modules not loaded (no list at all), the same', async () => {
    expect(await withTables(null).query(['iptables-legacy-save'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(ran()).toBe(false);
  });

  it('with a legacy table listed, runs the save', async () => {
    expect((await withTables('nat\n').query(['iptables-legacy-save']))!.stdout).toBe('*nat\nCOMMIT\n');
    expect(ran()).toBe(true);
  });

  it('not installed stays not installed, whatever the kernel lists', async () => {
    const host = withTables('');
    fs.rmSync(path.join(dir, 'bin', 'iptables-legacy-save'));
    process.env.PATH = path.join(dir, 'bin');
    expect(await host.query(['iptables-legacy-save'])).toBeNull();
  });
});

describe('RealHost processes', () => {
  it('lists the processes of its own network namespace from /proc, with their command line', async () => {
    const { spawn } = await import('node:child_process');
    // A child calling itself flanneld, the way `exec -a` names an agent: argv[0] is what counts.
    const child = spawn('bash', ['-c', 'exec -a flanneld sleep 30'], { stdio: 'ignore' });
    try {
      let found: Array<{ pid: number; comm: string; argv: string[] }> = [];
      for (let i = 0; i < 100 && !found.length; i++) {
        found = (await new RealHost('/').processes()).filter((p) => p.pid === child.pid && p.argv[0] === 'flanneld');
        if (!found.length) await new Promise((r) => setTimeout(r, 20));
      }
      expect(found).toEqual([{ pid: child.pid, comm: 'sleep', argv: ['flanneld', '30'] }]);
      const self = (await new RealHost('/some/root').processes()).find((p) => p.pid === process.pid);
      expect(self?.argv).toEqual(fs.readFileSync('/proc/self/cmdline', 'utf8').split('\0').slice(0, -1));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('RealHost, a name that is not UTF-8', () => {
  it('reaches the command byte for byte, and the bash that passes it runs neither ~/.bashrc nor $BASH_ENV', async () => {
    fs.writeFileSync(path.join(dir, '.bashrc'), 'echo FROM-BASHRC\n');
    fs.writeFileSync(path.join(dir, 'env.sh'), 'echo FROM-BASH-ENV\n');
    const saved = { ...process.env };
    Object.assign(process.env, { HOME: dir, BASH_ENV: path.join(dir, 'env.sh') });
    // As under cron or a systemd unit: bash reads ~/.bashrc for a socket on stdin only at level 1.
    delete process.env.SHLVL;
    try {
      // cali\xff: a device name a CNI could make, which Node cannot pass as an argument.
      const name = decodeName(Buffer.from([0x63, 0x61, 0x6c, 0x69, 0xff]));
      const r = await new RealHost('/').query(['sh', '-c', 'printf "%s" "$1" | od -An -tx1', 'sh', name]);
      expect(r).toEqual({ code: 0, stdout: ' 63 61 6c 69 ff\n', stderr: '' });
    } finally {
      process.env = saved;
    }
  });
});

describe('RealHost declared removals', () => {
  // A stand-in rm that logs and removes: whether a process ran is in the log.
  const rmLogged = () => {
    fs.writeFileSync(path.join(dir, 'bin', 'rm'), '#!/bin/sh\necho "rm $*" >> "$STANDIN_LOG"\nexec /bin/rm "$@"\n', { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'root/etc/cni/net.d'), { recursive: true });
    for (const f of ['a.conflist', 'b.conf']) fs.writeFileSync(path.join(dir, 'root/etc/cni/net.d', f), '{}');
  };
  const files = ['/etc/cni/net.d/a.conflist', '/etc/cni/net.d/b.conf', '/etc/cni/net.d/gone.conf'];
  const present = () => fs.readdirSync(path.join(dir, 'root/etc/cni/net.d')).sort();
  const ran = () => fs.readFileSync(log, 'utf8').includes('rm ');

  it('unlinks the node paths a step declares under the root, without a process', async () => {
    rmLogged();
    const root = path.join(dir, 'root');
    const host = new RealHost(root);
    await host.apply({ argv: ['rm', '-f', '--', ...files.map((f) => root + f)], touches: ['files'], unlinks: files });
    expect(present()).toEqual([]);
    expect(ran()).toBe(false);
  });

  it('runs the rm when the declaration does not match its argv exactly, or there is none', async () => {
    rmLogged();
    const root = path.join(dir, 'root');
    const host = new RealHost(root);
    await host.apply({ argv: ['rm', '-f', '--', root + files[0]!], touches: ['files'], unlinks: files });
    expect(present()).toEqual(['b.conf']);
    expect(ran()).toBe(true);
    fs.writeFileSync(log, '');
    await host.apply({ argv: ['rm', '-f', '--', root + files[1]!] });
    expect(present()).toEqual([]);
    expect(ran()).toBe(true);
  });
});

describe('RealHost under --root: symlinks are followed inside the root, never out of it', () => {
  // A node disk mounted at root: its absolute links name node paths, and the same paths exist on
  // the machine (here: under `outside`, which each link also names), holding files that must stay.
  const layout = () => {
    const root = path.join(dir, 'root');
    const outside = path.join(dir, 'outside');
    for (const d of [`${outside}/net.d`, `${root}${outside}/net.d`, `${root}/etc/cni`, `${root}/srv`]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(`${outside}/net.d/10-flannel.conflist`, "the machine's own\n");
    fs.writeFileSync(`${root}${outside}/net.d/10-flannel.conflist`, "the node's\n");
    fs.symlinkSync(`${outside}/net.d`, `${root}/etc/cni/net.d`);
    fs.symlinkSync('/srv/loop', `${root}/srv/loop`);
    fs.symlinkSync('../../../../../../../etc', `${root}/srv/up`);
    fs.mkdirSync(`${root}/etc/kubernetes`);
    fs.writeFileSync(`${root}/etc/kubernetes/x`, 'in the root\n');
    return { root, outside, host: new RealHost(root) };
  };

  it("reads the node's files where the node's own kernel would find them", async () => {
    const { root, outside, host } = layout();
    expect(await host.readFile('/etc/cni/net.d/10-flannel.conflist')).toBe("the node's\n");
    expect(await host.readDir('/etc/cni/net.d')).toEqual([{ name: '10-flannel.conflist', type: 'file' }]);
    expect(await host.entryType('/etc/cni/net.d')).toBe('symlink');
    expect(await host.entryType('/etc/cni/net.d/10-flannel.conflist')).toBe('file');
    expect(await host.readLink('/etc/cni/net.d')).toBe(`${outside}/net.d`);
    // ".." stops at the root, as the root directory's own ".." does.
    expect(await host.readFile('/srv/up/kubernetes/x')).toBe('in the root\n');
    await expect(host.readFile('/srv/loop/x')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await host.readFile('/etc/cni/net.d/missing')).toBeNull();
    // A missing directory on the way, even one a link follows with "..": absent, as lstat says.
    fs.symlinkSync('missing/../kubernetes', `${root}/etc/k8s`);
    expect(await host.entryType('/etc/k8s/x')).toBeNull();
    // Nor up from a file: the kernel says ENOTDIR.
    fs.symlinkSync('kubernetes/x/../kubernetes', `${root}/etc/thru-file`);
    expect(await host.entryType('/etc/thru-file/x')).toBeNull();
    // As a read below a file fails.
    await expect(host.readFile('/etc/thru-file/x')).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(host.readFile('/etc/kubernetes/x/y')).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(await host.readFile('/etc/kubernetes/x')).toBe('in the root\n');
    expect(fs.readFileSync(`${root}${outside}/net.d/10-flannel.conflist`, 'utf8')).toBe("the node's\n");
  });

  it("an in-process rm -f removes the file inside the root; the machine's file of that name stays byte for byte", async () => {
    const { root, outside, host } = layout();
    const file = '/etc/cni/net.d/10-flannel.conflist';
    await host.apply({ argv: ['rm', '-f', '--', root + file], touches: ['files'], unlinks: [file] });
    expect(fs.existsSync(`${root}${outside}/net.d/10-flannel.conflist`)).toBe(false);
    expect(fs.readFileSync(`${outside}/net.d/10-flannel.conflist`, 'utf8')).toBe("the machine's own\n");
  });

  it('the journal and the lock are written inside the root', async () => {
    const { root, outside, host } = layout();
    fs.mkdirSync(`${root}/var/lib`, { recursive: true });
    fs.symlinkSync(`${outside}/state`, `${root}/var/lib/cni-sweep`);
    await host.writeState('/var/lib/cni-sweep/last-run.json', '{}');
    const release = await host.lock('/var/lib/cni-sweep/lock');
    expect(fs.readdirSync(`${root}${outside}/state`).sort()).toEqual(['last-run.json', 'lock']);
    await release();
    expect(fs.existsSync(`${outside}/state`)).toBe(false);
  });

  it('the journal is written afresh: a link at its temporary name is replaced, its target untouched', async () => {
    const { root, outside, host } = layout();
    fs.mkdirSync(`${root}/var/lib/cni-sweep`, { recursive: true });
    fs.writeFileSync(`${outside}/victim`, "the machine's\n");
    fs.symlinkSync(`${outside}/victim`, `${root}/var/lib/cni-sweep/last-run.json.tmp-${process.pid}`);
    await host.writeState('/var/lib/cni-sweep/last-run.json', '{}');
    expect(fs.readFileSync(`${outside}/victim`, 'utf8')).toBe("the machine's\n");
    expect(fs.lstatSync(`${root}/var/lib/cni-sweep/last-run.json`).isFile()).toBe(true);
    expect(fs.readdirSync(`${root}/var/lib/cni-sweep`)).toEqual(['last-run.json']);
  });

  it('rm -f of a file under a non-directory succeeds, as GNU rm -f does', async () => {
    const root = path.join(dir, 'root');
    fs.mkdirSync(`${root}/etc/cni`, { recursive: true });
    fs.writeFileSync(`${root}/etc/cni/net.d`, 'a file where the conf dir was\n');
    const file = '/etc/cni/net.d/10-flannel.conflist';
    const gnu = spawnSync('rm', ['-f', '--', root + file]);
    const r = await new RealHost(root).apply({ argv: ['rm', '-f', '--', root + file], touches: ['files'], unlinks: [file] });
    expect(gnu.status).toBe(0);
    expect(r).toMatchObject({ stdout: '', stderr: '' });
  });
});

describe("RealHost's `cat > FILE` steps (the backup's undo scripts and manifest)", () => {
  it('writes the input to the file, mode 0600, without a process; a cat with arguments or no file still runs', async () => {
    fs.writeFileSync(path.join(dir, 'bin', 'cat'), '#!/bin/sh\necho "cat $*" >> "$STANDIN_LOG"\nexec /bin/cat "$@"\n', { mode: 0o755 });
    const host = new RealHost(dir);
    const file = path.join(dir, 'manifest.json');
    const r = await host.apply({ argv: ['cat'], stdin: '{"a": "é"}\n', stdoutTo: file, touches: ['own'] });
    expect(r).toEqual({ code: 0, stdout: '{"a": "é"}\n', stderr: '' });
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a": "é"}\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(log, 'utf8')).toBe('');
    await host.apply({ argv: ['cat', '-A'], stdin: 'x\n', stdoutTo: path.join(dir, 'other'), touches: ['own'] });
    expect(fs.readFileSync(path.join(dir, 'other'), 'utf8')).toBe('x$\n');
    expect(fs.readFileSync(log, 'utf8')).toBe('cat -A\n');
  });

  it('a file it cannot write fails the step as the shell redirection would', async () => {
    const host = new RealHost(dir);
    await expect(
      host.apply({ argv: ['cat'], stdin: 'x', stdoutTo: path.join(dir, 'missing-dir/manifest.json'), touches: ['own'] }),
    ).rejects.toThrow(/cannot write .*missing-dir\/manifest\.json/);
  });
});

// The backup's mkdir and checksums run in process: each is held to what GNU mkdir and sha256sum
// do with the same arguments, on the same files, side by side.
describe("RealHost's `mkdir -p -m` and `sha256sum --` steps (the backup's directory and checksums)", () => {
  const gnu = (argv: string[], cwd?: string) => {
    const r = spawnSync(`/usr/bin/${argv[0]}`, argv.slice(1), { argv0: argv[0], cwd, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const inProcess = async (host: RealHost, argv: string[], cwd?: string) => {
    try {
      return await host.apply({ argv, cwd, touches: ['own'] });
    } catch (e) {
      const err = e as CommandFailedError;
      return { code: err.exitCode, stdout: '', stderr: err.stderr };
    }
  };
  const modes = (top: string) =>
    Object.fromEntries(
      fs
        .readdirSync(top, { recursive: true, withFileTypes: true })
        .map((d) => [
          path.relative(top, path.join(d.parentPath, d.name)),
          (fs.lstatSync(path.join(d.parentPath, d.name)).mode & 0o7777).toString(8),
        ]),
    );
  const logged = (name: string) => {
    fs.writeFileSync(
      path.join(dir, 'bin', name),
      `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> "$STANDIN_LOG"\nexec /usr/bin/${name} "$@"\n`,
      { mode: 0o755 },
    );
  };

  it('mkdir: the same directories with the same modes as GNU mkdir, missing parents made, an existing one left alone, without a process', async () => {
    logged('mkdir');
    const host = new RealHost('/');
    const made: Record<string, unknown> = {};
    for (const side of ['gnu', 'ours']) {
      const top = path.join(dir, side);
      fs.mkdirSync(path.join(top, 'kept'), { recursive: true, mode: 0o755 });
      fs.chmodSync(path.join(top, 'kept'), 0o755);
      fs.writeFileSync(path.join(top, 'file'), '');
      const argv = ['mkdir', '-p', '-m', '0700', '--', `${top}/var/backups/b1`, `${top}/var/backups/b1/firewall`, `${top}/kept`];
      const r = side === 'gnu' ? gnu(argv) : await inProcess(host, argv);
      made[side] = { r, modes: modes(top) };
    }
    expect(made.ours).toEqual(made.gnu);
    expect((made.ours as { modes: Record<string, string> }).modes).toMatchObject({
      'var/backups/b1': '700',
      'var/backups/b1/firewall': '700',
      kept: '755',
    });
    expect(fs.readFileSync(log, 'utf8')).toBe('');
  });

  it("mkdir: the same modes as GNU mkdir under a setgid parent and under a umask that takes the owner's bits", async () => {
    logged('mkdir');
    const host = new RealHost('/');
    // Setting returns the one before (reading it alone is deprecated).
    const saved = process.umask(0o022);
    try {
      for (const [setgid, mask] of [
        [true, 0o022],
        [false, 0o277],
      ] as const) {
        const made: Record<string, unknown> = {};
        for (const side of ['gnu', 'ours']) {
          const top = path.join(dir, `${side}-${mask.toString(8)}`);
          fs.mkdirSync(top);
          if (setgid) fs.chmodSync(top, 0o2755);
          process.umask(mask);
          const argv = ['mkdir', '-p', '-m', '0700', '--', `${top}/b1`, `${top}/b1/firewall`, `${top}/new/parent/b2`];
          const r = side === 'gnu' ? gnu(argv) : await inProcess(host, argv);
          process.umask(saved);
          made[side] = { r, modes: modes(top) };
        }
        expect(made.ours).toEqual(made.gnu);
      }
    } finally {
      process.umask(saved);
    }
  });

  it('mkdir: a path taken by a file fails as GNU mkdir says, and the other directories are still made', async () => {
    const host = new RealHost('/');
    fs.writeFileSync(path.join(dir, 'taken'), '');
    const r = await inProcess(host, ['mkdir', '-p', '-m', '0700', '--', path.join(dir, 'taken'), path.join(dir, 'after')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`mkdir: cannot create directory '${path.join(dir, 'taken')}': File exists\n`);
    expect(fs.statSync(path.join(dir, 'after')).isDirectory()).toBe(true);
  });

  it("mkdir without -p (the backup's own directory): what GNU mkdir does when it exists, as a directory or a link to one, or its parent is missing; without a process", async () => {
    logged('mkdir');
    const host = new RealHost('/');
    const made: Record<string, unknown> = {};
    for (const side of ['gnu', 'ours']) {
      const top = path.join(dir, side);
      fs.mkdirSync(path.join(top, 'planted'), { recursive: true });
      fs.symlinkSync(path.join(top, 'planted'), path.join(top, 'link'));
      const argv = ['mkdir', '-m', '0700', '--', `${top}/b`, `${top}/b/firewall`, `${top}/planted`, `${top}/link`, `${top}/no/parent`];
      const r = side === 'gnu' ? gnu(argv) : await inProcess(host, argv);
      made[side] = {
        r: { ...(r as object), stderr: (r as { stderr: string }).stderr.replaceAll(top, 'TOP').replace(/[‘’]/g, "'") },
        modes: modes(top),
      };
    }
    expect(made.ours).toEqual(made.gnu);
    expect((made.ours as { r: { code: number } }).r.code).toBe(1);
    expect(fs.readFileSync(log, 'utf8')).toBe('');
  });

  it('sha256sum: the lines GNU sha256sum prints, a missing file worded as it words it, exit 1; without a process', async () => {
    logged('sha256sum');
    fs.mkdirSync(path.join(dir, 'b/firewall'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'b/firewall/iptables-nft.save'), '*nat\nCOMMIT\n');
    fs.writeFileSync(path.join(dir, 'b/files.tar'), Buffer.alloc(3 * 1024 * 1024 + 7, 7));
    fs.writeFileSync(path.join(dir, 'b/manifest.json'), '');
    const host = new RealHost('/');
    const cwd = path.join(dir, 'b');
    const all = ['sha256sum', '--', 'firewall/iptables-nft.save', 'files.tar', 'manifest.json'];
    expect(await inProcess(host, all, cwd)).toEqual({ ...gnu(all, cwd), code: 0 });
    const missing = ['sha256sum', '--', 'firewall/iptables-nft.save', 'gone.save', 'files.tar'];
    const r = await inProcess(host, missing, cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(gnu(missing, cwd).stderr);
    expect(fs.readFileSync(log, 'utf8')).toBe('');
  });

  it('sha256sum: a name it would escape (a backslash) is left to sha256sum itself', async () => {
    logged('sha256sum');
    const cwd = fs.mkdtempSync(path.join(dir, 'c'));
    fs.writeFileSync(path.join(cwd, 'a\\b'), 'x');
    const host = new RealHost('/');
    const r = await host.apply({ argv: ['sha256sum', '--', 'a\\b'], cwd, touches: ['own'] });
    expect(r.stdout).toBe(gnu(['sha256sum', '--', 'a\\b'], cwd).stdout);
    expect(r.stdout.startsWith('\\')).toBe(true);
    expect(fs.readFileSync(log, 'utf8')).toBe('sha256sum -- a\\b\n');
  });
});

describe('node files that are not regular files', () => {
  it('a FIFO, a directory and a huge file named like a config: one error each, at once; no hang, no endless read', async () => {
    const conf = path.join(dir, 'etc/cni/net.d');
    fs.mkdirSync(path.join(conf, 'dir.conf.d'), { recursive: true });
    expect(spawnSync('mkfifo', [path.join(conf, '10-fifo.conflist')]).status).toBe(0);
    fs.writeFileSync(path.join(conf, '20-huge.conf'), '');
    fs.truncateSync(path.join(conf, '20-huge.conf'), 17 * 1024 * 1024); // sparse
    fs.symlinkSync('dir.conf.d', path.join(conf, '30-dir.json'));
    // A unix socket (an agent's, named like a config): open(2) says ENXIO, before any fstat.
    expect(
      spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path.join(conf, '40-sock.json')])
        .status,
    ).toBe(0);
    const host = new RealHost(dir);
    await expect(host.readFile('/etc/cni/net.d/40-sock.json')).rejects.toThrow(
      '/etc/cni/net.d/40-sock.json: not a regular file (a socket): not read',
    );
    await expect(host.readFile('/etc/cni/net.d/10-fifo.conflist')).rejects.toThrow(
      '/etc/cni/net.d/10-fifo.conflist: not a regular file (a FIFO): not read',
    );
    await expect(host.readFile('/etc/cni/net.d/20-huge.conf')).rejects.toThrow(
      '/etc/cni/net.d/20-huge.conf: 17825792 bytes, more than the 16777216 cni-sweep reads of a file: not read',
    );
    await expect(host.readFile('/etc/cni/net.d/30-dir.json')).rejects.toThrow(
      '/etc/cni/net.d/30-dir.json: not a regular file (a directory): not read',
    );
    const { readCniConfigs } = await import('../../src/inspect.js');
    const { UsageError } = await import('../../src/errors.js');
    const err = await readCniConfigs(host).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe('/etc/cni/net.d/10-fifo.conflist: not a regular file (a FIFO): not read');
  });
});

describe('the lock', () => {
  it('held by a live process that took it: refused; a pid reused by another process since (its start time differs): taken over', async () => {
    const host = new RealHost(dir);
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const stat = fs.readFileSync(`/proc/${other.pid}/stat`, 'utf8');
      const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
      const lock = path.join(dir, 'run/cni-sweep.lock');
      fs.mkdirSync(path.dirname(lock), { recursive: true });
      for (const held of [`${other.pid} ${start}\n`, `${other.pid}\n`]) {
        fs.writeFileSync(lock, held);
        await expect(host.lock('/run/cni-sweep.lock')).rejects.toThrow(`another cni-sweep run (pid ${other.pid}) holds ${lock}`);
      }
      fs.writeFileSync(lock, `${other.pid} ${Number(start) - 1}\n`); // a run killed long ago; the pid is sleep's now
      const release = await host.lock('/run/cni-sweep.lock');
      expect(fs.readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\\n$`));
      await release();
      expect(fs.existsSync(lock)).toBe(false);
    } finally {
      other.kill();
    }
  });
});
