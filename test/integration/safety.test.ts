// Nothing lost, nothing broken: backup and restore, the lock, containment, faults and bad input,
// each on real kernel state in a network namespace and real files in a temporary root.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inNs, shimDir, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { cliArgv, cliEnv, nodeArgs, readCalls, resetCalls, runCli, snapshot, TestNodes, type NodeState, OWN } from '../helpers/harness.js';
import { onlyBinaries, wrapper } from '../helpers/faults.js';

const nodes = new TestNodes({ pods: 2 });
afterEach(nodes.cleanUp);
const dirtyNode = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

const scratchDir = (node: FlannelNode, name: string) => path.join(path.dirname(node.root), name);
/** Files as a restore can bring them back: pod netns files are mounts, not files, and are not restored. */
const restorable = (s: NodeState) => ({ ...s, files: s.files.filter((f) => !OWN.test(f) && !/^run\/netns\/cni-/.test(f)) });

describe('backup and restore', () => {
  it("restore brings back byte-identical files and the CNI's rules, without duplicating them", () => {
    const node = dirtyNode('restore');
    const before = restorable(snapshot(node));
    const tableBefore = inNs(node.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4']);
    const saveBefore = inNs(node.ns, 'iptables-nft-save', []);
    // The run's own $TMPDIR, so that another run on the machine cannot change what is compared.
    const tmpDir = scratchDir(node, 'tmp');
    fs.mkdirSync(tmpDir);
    const tmpBefore = fs.readdirSync(tmpDir).filter((f) => f.startsWith('cni-sweep-'));
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)], { env: { TMPDIR: tmpDir } });
    expect(run.code).toBe(0);
    const backup = JSON.parse(run.stdout).backup as string;
    // The backup holds the firewall as it was before the first change (its reads start early and run together).
    // Counters aside: a packet the namespace itself sends (IPv6 neighbour discovery) may count in between.
    const noCounters = (t: string) => t.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/\[\d+:\d+\]/g, '[n:n]');
    expect(noCounters(fs.readFileSync(path.join(backup, 'firewall/nft-ip-flannel-ipv4.nft'), 'utf8'))).toBe(noCounters(tableBefore));
    // The saves hold every iptables-nft rule: the whole ruleset is not read again.
    expect(fs.existsSync(path.join(backup, 'firewall/nft.ruleset'))).toBe(false);
    const noHeader = (t: string) =>
      noCounters(
        t
          .split('\n')
          .filter((l) => !l.startsWith('#'))
          .join('\n'),
      );
    expect(noHeader(fs.readFileSync(path.join(backup, 'firewall/iptables-nft.save'), 'utf8'))).toBe(noHeader(saveBefore));
    // nft's listing goes through a temporary file, which is gone afterwards.
    expect(fs.readdirSync(tmpDir).filter((f) => f.startsWith('cni-sweep-'))).toEqual(tmpBefore);
    const manifest = JSON.parse(fs.readFileSync(path.join(backup, 'manifest.json'), 'utf8'));
    expect(manifest.version).toBe(2);
    // Every member of files.tar, as tar wrote it: what restore checks before extracting.
    expect(manifest.members).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'etc/cni/net.d/10-flannel.conflist', type: 'file' })]),
    );
    expect(manifest.files).toContain('/etc/cni/net.d/10-flannel.conflist');
    expect(manifest.interfaces).toEqual(expect.arrayContaining(['cni0', 'flannel.1']));
    for (const f of [
      'firewall/iptables-nft.save',
      'firewall/iptables-legacy.save',
      'firewall/ip6tables-nft.save',
      'firewall/nft-ip-flannel-ipv4.nft',
      'node/links.json',
      'node/addrs.json',
      'node/routes-v4.json',
      'files.tar',
      'SHA256SUMS',
    ]) {
      expect(fs.existsSync(path.join(backup, f)), f).toBe(true);
    }
    expect(fs.statSync(backup).mode & 0o777).toBe(0o700);

    const dry = runCli(node, ['restore', backup, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('iptables-nft-restore --noflush -w');
    expect(dry.stdout).toMatch(/interfaces \(.*cni0.*\) and routes \(\d+\) are not recreated/);
    const afterRun = snapshot(node);
    expect(snapshot(node)).toEqual(afterRun);

    const r = runCli(node, ['restore', backup]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const after = restorable(snapshot(node));
    expect(after.files).toEqual(before.files);
    expect(after.ipt4nft).toEqual(before.ipt4nft);
    expect(after.ipt6nft).toEqual(before.ipt6nft);
    expect(after.nft).toEqual(before.nft);

    const again = runCli(node, ['restore', backup, '--json']);
    expect(again.code).toBe(0);
    // Every saved path is there again: nothing is extracted, nothing counted as restored.
    expect(JSON.parse(again.stdout).steps).toEqual([]);
    expect(JSON.parse(again.stdout).restored).toEqual({ paths: 0, firewallRules: 0, nftablesTables: 0, ipsets: 0 });
    expect(restorable(snapshot(node)).ipt4nft).toEqual(before.ipt4nft);
  });

  it('a FIFO under a removed state directory is archived but never extracted: the restore puts the rest back and says so, twice', () => {
    const node = dirtyNode('fifo');
    execFileSync('mkfifo', [path.join(node.root, 'run/flannel/agent.ctl')]);
    const subnetEnv = fs.readFileSync(path.join(node.root, 'run/flannel/subnet.env'), 'utf8');
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(run.code, run.stderr).toBe(0);
    const backup = JSON.parse(run.stdout).backup as string;
    expect(fs.existsSync(path.join(node.root, 'run/flannel'))).toBe(false);
    const note = '# not restored: run/flannel/agent.ctl: not a file, directory or link (a FIFO, socket or device), never extracted';
    const dry = runCli(node, ['restore', backup, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(note);
    const r = runCli(node, ['restore', backup, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(node.root, 'run/flannel/subnet.env'), 'utf8')).toBe(subnetEnv);
    expect(fs.existsSync(path.join(node.root, 'run/flannel/agent.ctl'))).toBe(false);
    // Nothing else is missing: a second restore has nothing to put back.
    const again = runCli(node, ['restore', backup, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).restored.paths).toBe(0);
  });

  it('a run that removes nothing writes no backup, and `backups` lists and prunes', () => {
    const node = dirtyNode('backups', { pods: 1 });
    expect(runCli(node, ['run', '--yes', ...nodeArgs(node)]).code).toBe(0);
    expect(runCli(node, ['run', '--yes', ...nodeArgs(node)]).code).toBe(0);
    const base = path.join(node.root, 'var/backups/cni-sweep');
    expect(fs.readdirSync(base)).toHaveLength(1);
    const list = runCli(node, ['backups', '--root', node.root]);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^CREATED +NODE +CNI +SIZE +NAME$/);
    expect(list.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+ {2}node-1 {2}flannel {2}\d+\.\d KiB {2}\d{8}T\d{6}Z-node-1$/m);
    fs.mkdirSync(path.join(base, '00000000T000000Z-old'));
    const pruned = runCli(node, ['backups', 'prune', '--keep', '1', '--root', node.root]);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toBe(`removed ${path.join(base, '00000000T000000Z-old')}\n`);
    expect(fs.readdirSync(base)).toHaveLength(1);
    expect(fs.readdirSync(base)[0]).toMatch(/-node-1$/);
    // A newer backup a killed run left half-written is not counted: the good one stays with it.
    const partial = path.join(base, '99999999T000000Z-node-1');
    fs.mkdirSync(path.join(partial, 'firewall'), { recursive: true });
    const kept = runCli(node, ['backups', 'prune', '--keep', '1', '--root', node.root]);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toBe('nothing to prune\n');
    expect(fs.readdirSync(base)).toHaveLength(2);
    fs.rmSync(partial, { recursive: true });

    // --keep 0 takes every way back: a dry run shows it, and without a terminal it needs --yes.
    const last = path.join(base, fs.readdirSync(base)[0]!);
    const dry = runCli(node, ['backups', 'prune', '--keep', '0', '--dry-run', '--root', node.root]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`\nrm -rf -- ${last}\n`);
    const refused = runCli(node, ['backups', 'prune', '--keep', '0', '--root', node.root]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('cni-sweep: error: refusing to remove every backup without confirmation\n  hint: pass --yes');
    expect(fs.readdirSync(base)).toEqual([path.basename(last)]);
    const all = runCli(node, ['backups', 'prune', '--keep', '0', '--yes', '--root', node.root]);
    expect(all.code).toBe(0);
    expect(fs.readdirSync(base)).toEqual([]);
    expect(runCli(node, ['backups', '--root', node.root]).stdout).toBe(`no backups in ${base}\n`);
  });

  it('refuses a corrupt backup with one line and exit 2, changing nothing', () => {
    const node = dirtyNode('corrupt', { pods: 1 });
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    const backup = JSON.parse(run.stdout).backup as string;
    fs.appendFileSync(path.join(backup, 'files.tar'), 'tampered');
    const before = snapshot(node);
    const r = runCli(node, ['restore', backup]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cni-sweep: error: backup .*: checksum mismatch for files\.tar/);
    expect(r.stderr).not.toMatch(/ at /);
    expect(snapshot(node)).toEqual(before);
    const missing = runCli(node, ['restore', path.join(node.root, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such directory/);
  });
});

describe('containment', () => {
  it('removes a symlink in the IPAM dir as a link and never touches its target', () => {
    const node = dirtyNode('symlink', { pods: 1 });
    const hosts = path.join(node.root, 'etc/hosts');
    const outside = scratchDir(node, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'precious'), 'keep me\n');
    fs.symlinkSync(hosts, path.join(node.root, 'var/lib/cni/networks/cbr0/10.244.1.99'));
    fs.symlinkSync(path.join(node.root, 'etc'), path.join(node.root, 'var/lib/cni/networks/cbr0/etc-link'));
    fs.symlinkSync(outside, path.join(node.root, `var/lib/cni/results/cbr0-${'e'.repeat(64)}-eth0`));
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(node.root, 'var/lib/cni/networks/cbr0'))).toBe(false);
    expect(fs.existsSync(path.join(node.root, `var/lib/cni/results/cbr0-${'e'.repeat(64)}-eth0`))).toBe(false);
    expect(fs.readFileSync(hosts, 'utf8')).toBe('127.0.0.1 localhost\n');
    expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('keep me\n');
  });

  it("leaves state alone when a directory above it is a symlink out of the CNI's locations", () => {
    const node = dirtyNode('symlink-parent', { pods: 1 });
    // An absolute link names a node path: the state is there for the node (under the root), behind a link.
    const elsewhere = path.join(node.root, 'srv/cni');
    fs.mkdirSync(path.dirname(elsewhere));
    fs.renameSync(path.join(node.root, 'var/lib/cni'), elsewhere);
    fs.symlinkSync('/srv/cni', path.join(node.root, 'var/lib/cni'));
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    const state = JSON.parse(r.stdout).phases.find((p: { name: string }) => p.name === 'cni-state');
    expect(state.notes.join('\n')).toMatch(/left alone: a directory above \/var\/lib\/cni\/flannel is a symlink/);
    expect(fs.readdirSync(path.join(elsewhere, 'networks/cbr0')).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(node.root, 'run/flannel'))).toBe(false);
  });

  it("--root is a boundary: a node's absolute symlinks lead to its own files, never to the machine's, which stay byte for byte", () => {
    const node = dirtyNode('root-links', { pods: 1 });
    // The machine's files at the paths the node's links name.
    const outside = scratchDir(node, 'outside');
    fs.mkdirSync(`${outside}/net.d`, { recursive: true });
    fs.mkdirSync(`${outside}/backups`);
    fs.mkdirSync(`${outside}/state`);
    const conf = fs.readFileSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'));
    fs.writeFileSync(`${outside}/net.d/05-flannel.conflist`, conf);
    fs.writeFileSync(`${outside}/backups/keep`, "the machine's backups\n");
    fs.symlinkSync(`${outside}/net.d/05-flannel.conflist`, path.join(node.root, 'etc/cni/net.d/05-flannel.conflist'));
    fs.symlinkSync(`${outside}/backups`, path.join(node.root, 'var/backups'));
    fs.mkdirSync(path.join(node.root, 'var/lib'), { recursive: true });
    fs.symlinkSync(`${outside}/state`, path.join(node.root, 'var/lib/cni-sweep'));
    const tree = (dir: string): string[] =>
      fs
        .readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .sort()
        .map((f) => {
          const p = path.join(dir, f);
          const st = fs.lstatSync(p);
          return `${f} ${st.mode.toString(8)} ${st.isFile() ? fs.readFileSync(p, 'base64') : ''}`;
        });
    const before = tree(outside);

    // Inside the root the config link dangles (libcni skips it), so it is no config of the node's.
    const plan = runCli(node, ['plan', ...nodeArgs(node)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).not.toMatch(/05-flannel/);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).removed.configs.names).toEqual(['/etc/cni/net.d/10-flannel.conflist']);
    expect(tree(outside)).toEqual(before);
    // The backup and the journal went where the node's links lead inside the root.
    expect(fs.readdirSync(path.join(node.root, outside, 'backups/cni-sweep'))).toHaveLength(1);
    expect(fs.existsSync(path.join(node.root, outside, 'state/last-run.json'))).toBe(true);
    expect(fs.readlinkSync(path.join(node.root, 'etc/cni/net.d/05-flannel.conflist'))).toBe(`${outside}/net.d/05-flannel.conflist`);
  });

  it('a conf dir that is a symlink out of the root: nothing of the machine is read or removed', () => {
    const node = dirtyNode('root-confdir', { pods: 1 });
    const outside = scratchDir(node, 'outside');
    fs.mkdirSync(outside);
    fs.renameSync(path.join(node.root, 'etc/cni/net.d'), `${outside}/net.d`);
    fs.symlinkSync(`${outside}/net.d`, path.join(node.root, 'etc/cni/net.d'));
    const before = fs.readdirSync(`${outside}/net.d`).map((f) => [f, fs.readFileSync(`${outside}/net.d/${f}`, 'utf8')]);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).removed.configs.count).toBe(0);
    expect(fs.readdirSync(`${outside}/net.d`).map((f) => [f, fs.readFileSync(`${outside}/net.d/${f}`, 'utf8')])).toEqual(before);
  });

  it('restore never extracts through a symlinked directory: a saved config whose conf dir became a link out of the root stays unrestored, with why', () => {
    const node = dirtyNode('restore-link', { pods: 1 });
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(run.code).toBe(0);
    const backup = JSON.parse(run.stdout).backup as string;
    // Later, the node's /etc/cni is a link: absolute, to a path the machine has too.
    const outside = scratchDir(node, 'outside');
    fs.mkdirSync(`${outside}/net.d`, { recursive: true });
    fs.mkdirSync(path.join(node.root, outside, 'net.d'), { recursive: true });
    fs.rmSync(path.join(node.root, 'etc/cni'), { recursive: true });
    fs.symlinkSync(outside, path.join(node.root, 'etc/cni'));
    const r = runCli(node, ['restore', backup, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.notes).toContain(
      'not restored: /etc/cni/net.d/10-flannel.conflist: a directory above it is a symlink, and restore never extracts through one',
    );
    expect(fs.readdirSync(`${outside}/net.d`)).toEqual([]);
    expect(fs.readdirSync(path.join(node.root, outside, 'net.d'))).toEqual([]);
    // What has no link above it is restored.
    expect(fs.existsSync(path.join(node.root, 'run/flannel/subnet.env'))).toBe(true);
  });

  it('the backup goes into a directory of its own: one planted under its name (a link to a machine file inside) is never written into', () => {
    const node = dirtyNode('backup-planted', { pods: 1 });
    const outside = scratchDir(node, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(`${outside}/victim`, "the machine's\n");
    // The names the next minute's backups would take, each with manifest.json linked to the machine's file.
    const base = path.join(node.root, 'var/backups/cni-sweep');
    const now = Date.now();
    for (let s = 0; s <= 60; s++) {
      const name = `${new Date(now + s * 1000).toISOString().replace(/[-:]|\.\d+/g, '')}-node-1`;
      fs.mkdirSync(path.join(base, name), { recursive: true });
      fs.symlinkSync(`${outside}/victim`, path.join(base, name, 'manifest.json'));
    }
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    const backup = JSON.parse(r.stdout).backup as string;
    expect(backup).toMatch(/\/\d{8}T\d{6}Z-node-1-2$/);
    expect(fs.lstatSync(path.join(backup, 'manifest.json')).isFile()).toBe(true);
    expect(fs.readFileSync(`${outside}/victim`, 'utf8')).toBe("the machine's\n");
  });

  it('a config that is an absolute link (a node path) is backed up and restored as that link', () => {
    const node = dirtyNode('restore-abs-link', { pods: 1 });
    const conf = path.join(node.root, 'etc/cni/net.d/10-flannel.conflist');
    fs.renameSync(conf, path.join(node.root, 'etc/cni/flannel.conflist'));
    fs.symlinkSync('/etc/cni/flannel.conflist', conf);
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(run.code).toBe(0);
    expect(fs.existsSync(conf)).toBe(false);
    const r = runCli(node, ['restore', JSON.parse(run.stdout).backup]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(fs.readlinkSync(conf)).toBe('/etc/cni/flannel.conflist');
  });

  it('a --root that is not a directory is a usage error', () => {
    const node = dirtyNode('badroot', { pods: 0 });
    const r = runCli(node, ['plan', '--root', path.join(node.root, 'etc/hosts')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^cni-sweep: error: --root .*: not a directory$/);
  });
});

describe('locking', () => {
  it("a second concurrent run exits 3 naming the holder's pid; the first finishes", async () => {
    const node = dirtyNode('lock', { pods: 1 });
    const slow = wrapper(scratchDir(node, 'slow'), 'ip', 'if [ "$1" = -batch ]; then sleep 2; fi');
    const first = spawn('nsenter', cliArgv(node, ['run', '--yes', ...nodeArgs(node)]), {
      env: cliEnv(node, { pathBefore: [slow] }),
      stdio: 'ignore',
    });
    const done = new Promise<number | null>((resolve) => first.on('exit', resolve));
    const lock = path.join(node.root, 'run/cni-sweep.lock');
    for (let i = 0; i < 100 && !fs.existsSync(lock); i++) await new Promise((r) => setTimeout(r, 50));
    const second = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`another cni-sweep run (pid ${first.pid}) holds ${lock}`);
    expect(await done).toBe(0);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('takes over a stale lock left by a dead process', () => {
    const node = dirtyNode('stale', { pods: 1 });
    const dead = spawnSync('true').pid; // reaped: no such process any more
    fs.writeFileSync(path.join(node.root, 'run/cni-sweep.lock'), `${dead}\n`);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(node.root, 'run/cni-sweep.lock'))).toBe(false);
    expect(snapshot(node).links.join('\n')).not.toMatch(/^cni0 /m);
  });
});

describe('faults', () => {
  it('a firewall change rejected after the services stopped: services restart, exit 1, the failure is reported, nothing lost', () => {
    const node = dirtyNode('fail');
    const faulty = wrapper(scratchDir(node, 'faulty'), 'iptables-nft-restore', 'echo "iptables-nft-restore: line 3 failed" >&2; exit 4');
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)], { pathBefore: [faulty] });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^cni-sweep: error: phase firewall failed: iptables-nft-restore --noflush -w exited 4: iptables-nft-restore: line 3 failed$/m,
    );
    const report = JSON.parse(r.stdout);
    expect(report.failed).toMatchObject({ phase: 'firewall', argv: ['iptables-nft-restore', '--noflush', '-w'], exitCode: 4 });
    expect(report.failed.stderr).toContain('line 3 failed');
    expect(report.phases.find((p: { name: string }) => p.name === 'netns').status).toBe('skipped');
    expect(r.calls.filter((c) => /stop|start/.test(c) && !c.includes('is-active'))).toEqual([
      'systemctl stop kubelet.service',
      'systemctl stop containerd.service',
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
    // Nothing lost: what was removed is in the backup, and the rules the failed call carried are untouched.
    expect(snapshot(node).ipt4nft).toEqual(before.ipt4nft);
    expect(fs.existsSync(path.join(report.backup, 'files.tar'))).toBe(true);
    // A rerun without the fault finishes the job.
    const again = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(again.code).toBe(0);
    expect(snapshot(node).ipt4nft).not.toMatch(/FLANNEL|cbr0/);
  });

  it('an immutable CNI config: refused before the first change, exit 1 naming it; nothing stopped, nothing removed', () => {
    const node = dirtyNode('immutable', { pods: 1 });
    const conflist = path.join(node.root, 'etc/cni/net.d/10-flannel.conflist');
    execFileSync('chattr', ['+i', conflist]);
    nodes.onCleanup(() => execFileSync('chattr', ['-i', conflist]));
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^cni-sweep: error: phase preflight failed: cannot remove ${conflist}: immutable \\(chattr \\+i\\); nothing was changed$`,
        'm',
      ),
    );
    const report = JSON.parse(r.stdout);
    expect(report.failed).toMatchObject({ phase: 'preflight' });
    expect(snapshot(node)).toEqual(before);
    expect(r.calls.filter((c) => / (stop|start) /.test(c))).toEqual([]);
  });

  it('--no-restart-on-failure leaves the services stopped', () => {
    const node = dirtyNode('norestart', { pods: 1 });
    const faulty = wrapper(scratchDir(node, 'faulty'), 'nft', 'if [ "$1" = -f ]; then echo "nft: boom" >&2; exit 1; fi');
    const r = runCli(node, ['run', '--yes', '--no-restart-on-failure', ...nodeArgs(node)], { pathBefore: [faulty] });
    expect(r.code).toBe(1);
    expect(r.calls.filter((c) => c.includes(' start '))).toEqual([]);
    expect(fs.readFileSync(path.join(shimDir(node.root), 'units/kubelet.service'), 'utf8').trim()).toBe('inactive');
  });

  /**
   * Starts `run` in a process group of its own (as a shell starts a job), with every `ip -batch`
   * slowed down; resolves once the interfaces batch is in flight.
   */
  async function runWithSlowBatch(node: FlannelNode, args: string[]) {
    const marker = path.join(scratchDir(node, 'slow'), 'batch-started');
    const slow = wrapper(scratchDir(node, 'slow'), 'ip', `if [ "$1" = -batch ]; then touch ${marker}; sleep 1.5; fi`);
    resetCalls(node);
    const child = spawn('nsenter', cliArgv(node, ['run', '--yes', ...args, ...nodeArgs(node)]), {
      env: cliEnv(node, { pathBefore: [slow] }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 500 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(marker)).toBe(true);
    return { child, exited, out: () => out };
  }

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130], // Ctrl-C: the terminal signals the whole job, cni-sweep and the command it runs
    ['SIGHUP', 129], // the terminal or the SSH session of an Ansible run went away: the same
  ] as const)(
    '%s to the process group mid-run: the command in flight finishes, what was stopped is restarted, the report is written, exit %i',
    async (signal, code) => {
      const node = dirtyNode(signal.toLowerCase(), { pods: 1 });
      const { child, exited, out } = await runWithSlowBatch(node, ['--json']);
      process.kill(-child.pid!, signal);
      expect(await exited).toBe(code);
      const report = JSON.parse(out());
      expect(report.interrupted).toBe(signal);
      const status = Object.fromEntries(report.phases.map((p: { name: string; status: string }) => [p.name, p.status]));
      expect(status.interfaces).toBe('ok');
      expect(status.routes).toBe('skipped');
      expect(status['start-runtime']).toBe('ok');
      expect(status['start-kubelet']).toBe('ok');
      expect(fs.existsSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);
      // The batch was not killed half way: every link it deletes is gone.
      expect(snapshot(node).links.filter((l) => /^(cni0|flannel\.1|veth[0-9a-f]{8}) /.test(l))).toEqual([]);
      expect(readCalls(node).slice(-2)).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
      const journal = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
      expect(journal.status).toBe('interrupted');
    },
  );

  it('a run whose output goes away (an SSH session without a terminal dropped) stops as on a signal: services restarted, journal written, exit 141', async () => {
    const node = dirtyNode('epipe', { pods: 1 });
    const { child, exited } = await runWithSlowBatch(node, []);
    // The reader is gone: the next progress line cni-sweep writes fails with EPIPE.
    child.stdout.destroy();
    child.stderr.destroy();
    expect(await exited).toBe(141);
    const journal = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
    expect(journal.status).toBe('interrupted');
    const status = Object.fromEntries(journal.report.phases.map((p: { name: string; status: string }) => [p.name, p.status]));
    // The steps in flight finished (the firewall's batches run beside the links'); nothing after
    // the one that noticed the lost output ran.
    expect(status.interfaces).toBe('ok');
    expect(status.firewall).toBe('ok');
    expect(['interrupted', 'skipped']).toContain(status.routes);
    expect(status.netns).toBe('skipped');
    expect(readCalls(node).slice(-2)).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
    expect(fs.readFileSync(path.join(shimDir(node.root), 'units/kubelet.service'), 'utf8').trim()).toBe('active');
  });

  it('SIGTERM during restore: the command in flight finishes, the rest is not run, one line says so, exit 143; a second restore finishes the job', async () => {
    const node = dirtyNode('restore-sigterm', { pods: 1 });
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(run.code).toBe(0);
    const backup = JSON.parse(run.stdout).backup as string;
    const marker = path.join(scratchDir(node, 'slow'), 'tar-started');
    const slow = wrapper(scratchDir(node, 'slow'), 'tar', `touch ${marker}; sleep 1.5`);
    const child = spawn('nsenter', cliArgv(node, ['restore', backup]), {
      env: cliEnv(node, { pathBefore: [slow] }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 500 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 20));
    process.kill(-child.pid!, 'SIGTERM');
    expect(await exited).toBe(143);
    expect(stderr.split('\n').filter((l) => /interrupted by/.test(l))).toEqual([
      expect.stringMatching(/^cni-sweep: restore interrupted by SIGTERM: [1-9]\d* commands? not run; run it again to finish$/),
    ]);
    // tar finished: the files are back; the firewall batches after it did not run.
    expect(fs.existsSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(true);
    expect(snapshot(node).ipt4nft).not.toContain('FLANNEL-POSTRTG');
    const again = runCli(node, ['restore', backup]);
    expect(again.code).toBe(0);
    expect(snapshot(node).ipt4nft).toContain('FLANNEL-POSTRTG');
  });

  it('a rerun after a crash finishes the job with the facts the crashed run recorded', async () => {
    const node = dirtyNode('crash', { oldUntagged: true, pods: 1 });
    const slow = wrapper(scratchDir(node, 'slow'), 'ip', 'if [ "$1" = -batch ]; then sleep 5; fi');
    const child = spawn('nsenter', cliArgv(node, ['run', '--yes', ...nodeArgs(node)]), {
      env: cliEnv(node, { pathBefore: [slow] }),
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const subnetEnv = path.join(node.root, 'run/flannel/subnet.env');
    for (let i = 0; i < 500 && fs.existsSync(subnetEnv); i++) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited;
    expect(fs.existsSync(subnetEnv)).toBe(false);
    const journal = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
    expect(journal.status).toBe('running');
    fs.rmSync(path.join(node.root, 'run/cni-sweep.lock'), { force: true });
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/finishing the unfinished run of/);
    const after = snapshot(node);
    expect(after.ipt4nft).not.toContain('-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN');
    expect(after.ipt4nft).toContain('-A POSTROUTING -s 10.244.0.0/16 -d 192.168.50.0/24 -j ACCEPT');
    expect(after.routes4).not.toMatch(/10\.244\.2\.0\/24/);
  });

  it('a node without iptables-legacy, nft and kubectl: those are skipped with a note, the rest is cleaned', () => {
    const node = dirtyNode('missing-bins', { pods: 1 });
    const bins = onlyBinaries(scratchDir(node, 'bin'), [
      'ip',
      'iptables-nft-save',
      'iptables-nft-restore',
      'ip6tables-nft-save',
      'ip6tables-nft-restore',
      'rm',
      'tar',
      'mkdir',
      'cat',
      'sha256sum',
      'umount',
      'bash',
      'env',
      'sleep',
    ]);
    const shimsWithoutKubectl = scratchDir(node, 'shims');
    fs.mkdirSync(shimsWithoutKubectl);
    fs.copyFileSync(path.resolve(__dirname, '../helpers/shims/systemctl'), path.join(shimsWithoutKubectl, 'systemctl'));
    fs.chmodSync(path.join(shimsWithoutKubectl, 'systemctl'), 0o755);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)], { env: { PATH: `${shimsWithoutKubectl}:${bins}` } });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const notes = report.phases.flatMap((p: { notes: string[] }) => p.notes).join('\n');
    expect(notes).toMatch(/not draining: kubectl is not installed/);
    expect(notes).toMatch(/nft is not installed/);
    expect(notes).toMatch(/iptables-legacy-save is not installed/);
    const after = snapshot(node);
    expect(after.ipt4nft).not.toMatch(/FLANNEL|cbr0/);
    expect(after.nft).toContain('flannel-ipv4'); // could not be removed without nft: reported, not crashed
  });

  it('keeps the whole nftables ruleset when an iptables-nft save leaves something out (a base chain iptables cannot show)', () => {
    const node = dirtyNode('ruleset', { pods: 1 });
    // A base chain made with nft in an iptables-nft table: iptables-nft-save says it cannot show it, and the run must not lose it.
    inNs(node.ns, 'nft', ['add', 'table', 'ip', 'mangle']);
    inNs(node.ns, 'nft', ['add', 'chain', 'ip', 'mangle', 'mine', '{ type filter hook forward priority 5; }']);
    inNs(node.ns, 'nft', ['add', 'rule', 'ip', 'mangle', 'mine', 'ip', 'daddr', '192.0.2.1', 'meta', 'mark', 'set', '0x7']);
    expect(inNs(node.ns, 'iptables-nft-save', [])).toMatch(/^# Table `mangle' contains incompatible base-chains/m);
    const rulesetBefore = inNs(node.ns, 'nft', ['list', 'ruleset']);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    const backup = JSON.parse(r.stdout).backup as string;
    const noCounters = (t: string) => t.replace(/counter packets \d+ bytes \d+/g, 'counter');
    expect(noCounters(fs.readFileSync(path.join(backup, 'firewall/nft.ruleset'), 'utf8'))).toBe(noCounters(rulesetBefore));
    expect(fs.readFileSync(path.join(backup, 'SHA256SUMS'), 'utf8')).toMatch(/ firewall\/nft\.ruleset$/m);
    expect(inNs(node.ns, 'nft', ['list', 'chain', 'ip', 'mangle', 'mine'])).toContain('meta mark set 0x00000007');
  });

  it("an unusable $TMPDIR (nft's listings go through a temporary file when they can) still cleans the node and backs up the CNI's table", () => {
    const node = dirtyNode('tmpdir', { pods: 1 });
    const tableBefore = inNs(node.ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4']);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)], { env: { TMPDIR: scratchDir(node, 'no-such-dir') } });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const backup = JSON.parse(r.stdout).backup as string;
    const noCounters = (t: string) => t.replace(/counter packets \d+ bytes \d+/g, 'counter');
    expect(noCounters(fs.readFileSync(path.join(backup, 'firewall/nft-ip-flannel-ipv4.nft'), 'utf8'))).toBe(noCounters(tableBefore));
    const after = snapshot(node);
    expect(after.nft).not.toContain('flannel-ipv4');
    expect(after.ipt4nft).not.toMatch(/FLANNEL|cbr0/);
  });
});

describe('bad input', () => {
  it('a read-only root: one clear line, exit 2, and nothing changed', () => {
    const node = dirtyNode('readonly', { pods: 1 });
    execFileSync('mount', ['--bind', node.root, node.root]);
    execFileSync('mount', ['-o', 'remount,ro,bind', node.root]);
    nodes.onCleanup(() => execFileSync('umount', ['-l', node.root]));
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('cni-sweep: error:'))).toEqual([
      expect.stringMatching(/^cni-sweep: error: cannot write .*: read-only file system$/),
    ]);
    expect(snapshot(node)).toEqual(before);
    expect(r.calls.filter((c) => !c.includes('is-active'))).toEqual([]);
  });

  it("a symlink loop in the root (the node disk's /var/lib/cni -> /var/lib/cni): one clear line, exit 2, and nothing changed", () => {
    const node = dirtyNode('loop', { pods: 1 });
    const cni = path.join(node.root, 'var/lib/cni');
    fs.renameSync(cni, `${cni}.was`);
    fs.symlinkSync('/var/lib/cni', cni);
    const before = snapshot(node);
    for (const cmd of [['plan'], ['run', '--yes']]) {
      const r = runCli(node, [...cmd, ...nodeArgs(node)]);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('cni-sweep: error:'))).toEqual([
        `cni-sweep: error: /var/lib/cni/flannel under --root ${node.root}: a symlink loop (more than 40 links)`,
      ]);
    }
    expect(snapshot(node)).toEqual(before);
  });

  it('an unparsable CNI config: exit 2 naming the file, nothing changed', () => {
    const node = dirtyNode('badconf', { pods: 1 });
    fs.writeFileSync(path.join(node.root, 'etc/cni/net.d/05-broken.conflist'), '{"name": "x", "plugins": [ {"type": ');
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('cni-sweep: error:'))).toEqual([
      expect.stringMatching(/^cni-sweep: error: \/etc\/cni\/net\.d\/05-broken\.conflist: not valid JSON/),
    ]);
    expect(snapshot(node)).toEqual(before);
  });
});
