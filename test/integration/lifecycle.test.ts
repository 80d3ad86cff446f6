// A run never stops half way on what it could have known, and never leaves a node worse than it
// found it: the preflight (read-only, immutable, missing tools), the services a crashed run left
// stopped, a backup that cannot be written, and bad option values. Real kernel state in a network
// namespace, real files in a temporary root, the recording shims for systemctl and kubectl.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { shimDir, type FlannelNode, type FlannelNodeOptions } from '../helpers/flannel-node.js';
import { cliArgv, cliEnv, nodeArgs, readCalls, resetCalls, runCli, SHIMS, snapshot, TestNodes } from '../helpers/harness.js';
import { onlyBinaries, wrapper } from '../helpers/faults.js';

const nodes = new TestNodes({ pods: 2 });
afterEach(nodes.cleanUp);
const dirtyNode = (tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode => nodes.make(tag, o);

const scratchDir = (node: FlannelNode, name: string) => path.join(path.dirname(node.root), name);
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('cni-sweep: error:'));
/** What the shims did that changes something: no reads (is-active, kubectl get, crictl's listings). */
const changes = (calls: string[]) =>
  calls.filter(
    (c) =>
      !c.includes(' is-active ') &&
      !c.startsWith('systemctl show ') &&
      !c.includes(' get ') &&
      !/^crictl (?:.* )?(?:pods|inspectp)\b/.test(c),
  );
const unit = (node: FlannelNode, name: string) => fs.readFileSync(path.join(shimDir(node.root), 'units', name), 'utf8').trim();

describe('preflight: nothing changes unless every removal can happen', () => {
  it('/var/lib/cni on a read-only mount: exit 1 naming the path, nothing changed, no service stopped, no backup', () => {
    const node = dirtyNode('ro-cni');
    const cni = path.join(node.root, 'var/lib/cni');
    execFileSync('mount', ['--bind', cni, cni]);
    execFileSync('mount', ['-o', 'remount,ro,bind', cni]);
    nodes.onCleanup(() => execFileSync('umount', ['-l', cni]));
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^cni-sweep: error: phase preflight failed: cannot remove ${cni}/\\S+: read-only file system( \\(and \\d+ more: see the preflight notes\\))?; nothing was changed$`,
        ),
      ),
    ]);
    expect(snapshot(node)).toEqual(before);
    expect(changes(r.calls)).toEqual([]);
    expect(fs.existsSync(path.join(node.root, 'var/backups'))).toBe(false);
    // The plan shows what a run would refuse, and still the commands.
    const plan = runCli(node, ['plan', ...nodeArgs(node)]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`^# a run would refuse: cannot remove ${cni}/\\S+: read-only file system$`, 'm'));
  });

  it('a file system mounted inside a state directory the run removes: exit 1 naming it, nothing changed, rm -rf never walks into it', () => {
    // As Cilium's bpffs fallback sits in /run/cilium: the bpf phase runs beside cni-state on the
    // strength of this refusal.
    const node = dirtyNode('mount-in-state', { pods: 1 });
    const mnt = path.join(node.root, 'run/flannel/mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', 'cni-sweep-test', mnt]);
    nodes.onCleanup(() => execFileSync('umount', ['-l', mnt]));
    fs.writeFileSync(path.join(mnt, 'pinned'), 'kept\n');
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `cni-sweep: error: phase preflight failed: cannot remove ${mnt}: a file system is mounted on it; nothing was changed`,
    ]);
    expect(snapshot(node)).toEqual(before);
    expect(changes(r.calls)).toEqual([]);
    expect(fs.readFileSync(path.join(mnt, 'pinned'), 'utf8')).toBe('kept\n');
  });

  it('one immutable IPAM file (chattr +i): exit 1 naming it, the conflist and everything else still there', () => {
    const node = dirtyNode('immutable-ipam');
    const ipam = path.join(node.root, 'var/lib/cni/networks/cbr0', node.pods[1]!.ip);
    execFileSync('chattr', ['+i', ipam]);
    nodes.onCleanup(() => execFileSync('chattr', ['-i', ipam]));
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `cni-sweep: error: phase preflight failed: cannot remove ${ipam}: immutable (chattr +i); nothing was changed`,
    ]);
    expect(snapshot(node)).toEqual(before);
    expect(changes(r.calls)).toEqual([]);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ changed: false, backup: null, failed: { phase: 'preflight' } });
    expect(report.phases.find((p: { name: string }) => p.name === 'preflight').status).toBe('failed');
    expect(unit(node, 'kubelet.service')).toBe('active');
  });

  it('a missing tool the plan runs (tar, for the backup): exit 1 naming it, nothing changed', () => {
    const node = dirtyNode('no-tar', { pods: 1 });
    const bins = onlyBinaries(scratchDir(node, 'bin'), [
      'ip',
      'iptables-nft-save',
      'iptables-nft-restore',
      'ip6tables-nft-save',
      'ip6tables-nft-restore',
      'iptables-legacy-save',
      'iptables-legacy-restore',
      'ip6tables-legacy-save',
      'ip6tables-legacy-restore',
      'nft',
      'rm',
      'mkdir',
      'cat',
      'sha256sum',
      'umount',
      'bash',
      'env',
    ]);
    const before = snapshot(node);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)], { env: { PATH: `${SHIMS}:${bins}` } });
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      'cni-sweep: error: phase preflight failed: tar is not installed (phase backup runs it); nothing was changed',
    ]);
    expect(snapshot(node)).toEqual(before);
    expect(changes(r.calls)).toEqual([]);
  });
});

describe('a crashed run leaves no service stopped for the next run', () => {
  /**
   * Starts `run` with the systemctl call `held` (its arguments, a bash pattern) held: it never
   * reaches the shim. SIGKILLs cni-sweep once that call began: a power loss or OOM kill at that moment.
   */
  async function crashAt(node: FlannelNode, held: string, args: string[] = []) {
    const marker = path.join(scratchDir(node, 'hold'), 'held');
    // Never the real systemctl: the held call records its pid and waits until the test kills it; any other goes to the shim.
    const dir = wrapper(
      scratchDir(node, 'hold'),
      'systemctl',
      `if [[ "$*" == ${held} ]]; then echo $$ > ${marker}; exec sleep 60; fi`,
      `${SHIMS}/systemctl`,
    );
    resetCalls(node);
    const child = spawn('nsenter', cliArgv(node, ['run', '--yes', ...args, ...nodeArgs(node)]), {
      env: cliEnv(node, { pathBefore: [dir] }),
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 500 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(marker)).toBe(true);
    child.kill('SIGKILL');
    await exited;
    // The held call dies with the run's machine, so to speak: it never reaches systemd.
    process.kill(Number(fs.readFileSync(marker, 'utf8')), 'SIGKILL');
    return readCalls(node);
  }

  it('killed before starting the services, with everything cleaned: plan says it would start them, a rerun starts them and says why', async () => {
    const node = dirtyNode('crash-start', { pods: 1 });
    const calls = await crashAt(node, "'start '*");
    expect(changes(calls).filter((c) => c.startsWith('systemctl'))).toEqual([
      'systemctl stop kubelet.service',
      'systemctl stop containerd.service',
    ]);
    expect(unit(node, 'kubelet.service')).toBe('inactive');
    expect(unit(node, 'containerd.service')).toBe('inactive');
    const journal = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
    expect(journal).toMatchObject({ status: 'running', leftStopped: ['kubelet.service', 'containerd.service'] });

    const note =
      /unfinished run of \S+ \(pid \d+\) stopped kubelet\.service, containerd\.service and did not start them again: starting them at the end of this run/;
    const plan = runCli(node, ['plan', ...nodeArgs(node)]);
    expect(plan.code).toBe(0);
    expect(plan.stderr).toMatch(note);
    expect(plan.stdout).toMatch(/^systemctl start containerd\.service$/m);
    expect(plan.stdout).toMatch(/^systemctl start kubelet\.service$/m);
    expect(plan.stdout).not.toMatch(/^(rm|ip|kubectl|systemctl stop)/m); // nothing left to clean
    expect(changes(plan.calls)).toEqual([]);

    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(note);
    expect(changes(r.calls)).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
    expect(unit(node, 'kubelet.service')).toBe('active');
    expect(unit(node, 'containerd.service')).toBe('active');
    expect(JSON.parse(r.stdout).changed).toBe(true);
    const after = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
    expect(after).toMatchObject({ status: 'finished', leftStopped: [] });

    // Done once: the next run has nothing to start.
    const again = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(again.code).toBe(0);
    expect(changes(again.calls)).toEqual([]);
  });

  it('killed after stopping kubelet, while stopping the runtime: the rerun cleans the node and starts kubelet too', async () => {
    const node = dirtyNode('crash-stop', { pods: 1 });
    await crashAt(node, "'stop containerd.service'");
    expect(unit(node, 'kubelet.service')).toBe('inactive');
    expect(unit(node, 'containerd.service')).toBe('active'); // its stop never happened
    const journal = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
    expect(journal.leftStopped).toEqual(['kubelet.service', 'containerd.service']);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    // containerd is running: only kubelet is the crashed run's to start.
    expect(r.stderr).toMatch(
      /unfinished run of \S+ \(pid \d+\) stopped kubelet\.service and did not start it again: starting it at the end of this run/,
    );
    expect(changes(r.calls).filter((c) => c.startsWith('systemctl'))).toEqual([
      'systemctl stop containerd.service',
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
    expect(unit(node, 'kubelet.service')).toBe('active');
    expect(fs.existsSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(false);
    expect(snapshot(node).links.join('\n')).not.toMatch(/^cni0 /m);
  });
});

describe('what a run or an earlier run stopped is started again, however the run ends', () => {
  const leftNote = /stopped kubelet\.service and did not start it again: starting it at the end of this run/;
  /** A node where a run was killed after stopping kubelet: kubelet inactive, the cleanup still to do. */
  async function killedAfterKubeletStop(tag: string): Promise<FlannelNode> {
    const node = dirtyNode(tag, { pods: 1 });
    // The run's own process is systemctl's parent: killed as the runtime's stop begins.
    const dir = wrapper(
      scratchDir(node, 'kill'),
      'systemctl',
      `if [[ "$*" == 'stop containerd.service' ]]; then kill -KILL $PPID; exit 1; fi`,
      `${SHIMS}/systemctl`,
    );
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)], { pathBefore: [dir] });
    expect(r.code).not.toBe(0);
    expect(unit(node, 'kubelet.service')).toBe('inactive');
    return node;
  }

  it('a rerun that refuses (no kubeconfig: it will not drain) still starts the kubelet the killed run left stopped', async () => {
    const node = await killedAfterKubeletStop('left-refused');
    const noKube = nodeArgs(node).slice(0, 4);
    const r = runCli(node, ['run', '--yes', ...noKube]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(leftNote);
    expect(changes(r.calls)).toEqual(['systemctl start kubelet.service']);
    expect(unit(node, 'kubelet.service')).toBe('active');
    expect(fs.existsSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'))).toBe(true); // nothing cleaned
  });

  it('a rerun limited with --only still starts the kubelet the killed run left stopped', async () => {
    const node = await killedAfterKubeletStop('left-only');
    const r = runCli(node, ['run', '--yes', '--json', '--only', 'cni-config', ...nodeArgs(node)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(leftNote);
    expect(changes(r.calls)).toEqual(['systemctl start kubelet.service']);
    expect(unit(node, 'kubelet.service')).toBe('active');
    const start = JSON.parse(r.stdout).phases.find((p: { name: string }) => p.name === 'start-kubelet');
    expect(start).toMatchObject({ status: 'ok', notes: ['run because an earlier run left them stopped'] });
  });

  it('a SIGTERM while the runtime is being started: kubelet is started too before the run exits', async () => {
    const node = dirtyNode('term-start', { pods: 1 });
    const dir = wrapper(
      scratchDir(node, 'term'),
      'systemctl',
      `if [[ "$*" == 'start containerd.service' ]]; then kill -TERM $PPID; sleep 0.3; fi`,
      `${SHIMS}/systemctl`,
    );
    const r = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)], { pathBefore: [dir] });
    expect(r.code).toBe(143);
    expect(unit(node, 'containerd.service')).toBe('active');
    expect(unit(node, 'kubelet.service')).toBe('active');
    expect(changes(r.calls).filter((c) => c.startsWith('systemctl start'))).toEqual([
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
    const journal = JSON.parse(fs.readFileSync(path.join(node.root, 'var/lib/cni-sweep/last-run.json'), 'utf8'));
    expect(journal).toMatchObject({ status: 'interrupted', leftStopped: [] });
  });
});

describe('the kernel tables are read again after a step of the run that can change them, and only then', () => {
  /** How many times a run started `iptables-nft-save` (its trace names every process it starts). */
  const saves = (trace: string) =>
    fs
      .readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => /^\s*\d+\s+\d+ \$ iptables-nft-save\b/.test(l)).length;
  const runTraced = (node: FlannelNode, args: string[]) => {
    const trace = scratchDir(node, 'trace');
    const r = runCli(node, ['run', '--yes', ...args, ...nodeArgs(node)], { env: { CNI_SWEEP_TRACE: trace } });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(snapshot(node).ipt4nft).not.toMatch(/FLANNEL|cbr0/);
    return { r, saves: saves(trace) };
  };
  /** kubelet not running; containerd running, with the KillMode its own unit sets (or systemd's default). */
  const runtimeOnly = (tag: string, killMode?: string) => {
    const node = dirtyNode(tag);
    fs.writeFileSync(path.join(shimDir(node.root), 'units/kubelet.service'), 'inactive\n');
    if (killMode) fs.writeFileSync(path.join(shimDir(node.root), 'units/containerd.service.killmode'), `${killMode}\n`);
    return node;
  };

  it('stopping containerd (KillMode=process: its pods outlive it) with kubelet down: the tables are read once', () => {
    const node = runtimeOnly('keeps', 'process');
    const { r, saves: n } = runTraced(node, ['--skip', 'drain']);
    expect(changes(r.calls)).toEqual(['systemctl stop containerd.service', 'systemctl start containerd.service']);
    expect(n).toBe(1);
  });

  it('a containerd whose stop kills its control group (a drop-in, or no KillMode): read again after it', () => {
    const node = runtimeOnly('kills');
    expect(runTraced(node, ['--skip', 'drain']).saves).toBe(2);
  });

  it('a drain (the pods it evicts have their networks torn down by kubelet): read again after it', () => {
    const node = runtimeOnly('drain', 'process');
    const { r, saves: n } = runTraced(node, []);
    expect(changes(r.calls)).toEqual(expect.arrayContaining([expect.stringMatching(/^kubectl .* drain node-1 /)]));
    expect(n).toBe(2);
  });

  it('the links and routes the interfaces phase changed: read again once, together, before the routes phase', () => {
    const node = dirtyNode('relist');
    const trace = scratchDir(node, 'trace');
    const r = runCli(node, ['run', '--yes', '--only', 'interfaces,routes', ...nodeArgs(node)], { env: { CNI_SWEEP_TRACE: trace } });
    expect(r.code).toBe(0);
    expect(snapshot(node).routes4).not.toMatch(/10\.244\.\d+\.0\/24 via/);
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const after = lines.slice(lines.findIndex((l) => /- applied interfaces\b/.test(l)));
    const reads = after
      .filter((l) => /\d \$ ip (-d -j addr show|-j -[46] route show table main)\b/.test(l))
      .map((l) => l.replace(/^[\s\d]+\$ /, ''));
    expect(reads.sort()).toEqual([
      'ip -d -j addr show (batch)',
      'ip -j -4 route show table main (batch)',
      'ip -j -6 route show table main (batch)',
    ]);
  });

  it('kubelet stopped by the run (it tore pods down on its own until then): read again after it', () => {
    const node = dirtyNode('kubelet');
    fs.writeFileSync(path.join(shimDir(node.root), 'units/containerd.service.killmode'), 'process\n');
    expect(runTraced(node, ['--skip', 'drain']).saves).toBe(2);
  });

  it("nftables: one listing of every table says which of Flannel's exist; only the one present is read (by the backup), saved as nft lists it, and deleted", () => {
    const node = dirtyNode('nfttables');
    const nft = (...args: string[]) => execFileSync('ip', ['netns', 'exec', node.ns, 'nft', ...args], { encoding: 'utf8' });
    const text = nft('list', 'table', 'ip', 'flannel-ipv4');
    const trace = scratchDir(node, 'trace');
    const r = runCli(node, ['run', '--yes', '--json', '--skip', 'drain', ...nodeArgs(node)], { env: { CNI_SWEEP_TRACE: trace } });
    expect(r.code).toBe(0);
    const nftRuns = fs
      .readFileSync(trace, 'utf8')
      .split('\n')
      .flatMap((l) => /^\s*\d+\s+\d+ \$ (nft .*)$/.exec(l)?.[1] ?? []);
    // The table Flannel does not have here (ip6 flannel-ipv6) is never read; the one it has is read
    // for the backup beside the backup's other listings, not by a process of its own; the listing
    // is read first among the loader's early reads, and again after the services stop, as every
    // listing is.
    expect(nftRuns).toEqual([
      'nft list flowtables (early)',
      'nft list table ip flannel-ipv4 (batch)',
      'nft list flowtables (batch)',
      'nft -f -',
    ]);
    const backup = JSON.parse(r.stdout).backup as string;
    expect(fs.readFileSync(path.join(backup, 'firewall/nft-ip-flannel-ipv4.nft'), 'utf8')).toBe(text);
    expect(nft('list', 'tables')).toBe('table ip nat\ntable ip filter\ntable ip6 nat\ntable ip6 filter\ntable inet site-filter\n');
  });
});

describe('bad input is a usage error before anything changes', () => {
  it.each([['--root'], ['--only'], ['--skip'], ['--with'], ['--cni'], ['--pod-cidr'], ['--kubeconfig'], ['--node'], ['--backup-dir']])(
    'run %s "": exit 2, one line, nothing changed',
    (opt) => {
      const node = dirtyNode(`empty${opt.replace(/-/g, '')}`.slice(0, 14), { pods: 1 });
      const before = snapshot(node);
      // The empty value comes last, so that it is not overridden by the standard arguments.
      const r = runCli(node, ['run', '--yes', ...nodeArgs(node), opt, '']);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([
        `cni-sweep: error: ${opt}: empty value`,
        `  hint: give ${opt} a value, or leave the option out`,
      ]);
      expect(snapshot(node)).toEqual(before);
      // Nothing but the loader's read-only early listings ran (the units' states among them): no
      // drain, stop or start.
      expect(r.calls.filter((c) => !c.startsWith('systemctl is-active '))).toEqual([]);
    },
  );

  it('options without a command: exit 2 with one line naming the commands; no arguments at all: the help, exit 0', () => {
    const node = dirtyNode('nocommand', { pods: 0 });
    const r = runCli(node, ['--root', node.root, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^cni-sweep: error: no command given before --root: options come after the command\n {2}hint: commands: plan, run, doctor, restore, backups, profiles, version, completion; see cni-sweep --help\n$/,
    );
    const none = runCli(node, []);
    expect(none.code).toBe(0);
    expect(none.stderr).toBe('');
    expect(none.stdout).toMatch(/^Usage: cni-sweep \[options\] \[command\]\n/);
  });

  it.each([
    [
      'inside a directory the run removes',
      'var/lib/cni/networks/cbr0/backups',
      /is inside \S+\/var\/lib\/cni\/networks\/cbr0, which this run removes$/,
    ],
    ['in the CNI config directory', 'etc/cni/net.d/backups', /is in the CNI config directory \S+\/etc\/cni\/net\.d$/],
  ])('--backup-dir %s: exit 2 before anything changes', (_what, rel, message) => {
    const node = dirtyNode('backupdir', { pods: 1 });
    const before = snapshot(node);
    const dir = path.join(node.root, rel);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node), '--backup-dir', dir]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(message)]);
    expect(errorLines(r.stderr)[0]).toContain(`--backup-dir ${dir} `);
    expect(snapshot(node)).toEqual(before);
    expect(changes(r.calls)).toEqual([]);
    // Through a symlink to it, the same.
    const link = scratchDir(node, 'link');
    fs.symlinkSync(path.dirname(dir), link);
    const viaLink = runCli(node, ['plan', ...nodeArgs(node), '--backup-dir', path.join(link, 'backups')]);
    expect(viaLink.code).toBe(2);
    expect(errorLines(viaLink.stderr)).toEqual([expect.stringMatching(message)]);
  });
});

describe('a failed phase says what failed in one short line', () => {
  it('a removal of many paths that fails: the line shows the first path and how many, the report and --verbose the whole command', () => {
    const node = dirtyNode('shortline', { pods: 6 });
    const failing = wrapper(
      scratchDir(node, 'faulty'),
      'rm',
      'if [ "$1" = -rf ]; then echo "rm: cannot remove: Input/output error" >&2; exit 1; fi',
    );
    const r = runCli(node, ['run', '--yes', '--json', '--verbose', ...nodeArgs(node)], { pathBefore: [failing] });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    const argv: string[] = report.failed.argv;
    expect(argv.slice(0, 2)).toEqual(['rm', '-rf']);
    expect(argv.length).toBeGreaterThan(8);
    const line = errorLines(r.stderr)[0]!;
    expect(line).toBe(
      `cni-sweep: error: phase cni-state failed: rm -rf -- ${argv[3]} ... (${argv.length - 3} paths) exited 1: rm: cannot remove: Input/output error`,
    );
    expect(line.length).toBeLessThan(300);
    expect(report.failed.error).toBe(line.replace('cni-sweep: error: phase cni-state failed: ', ''));
    // --verbose prints the whole command on the line after.
    expect(r.stderr).toContain(`\n  command: ${argv.join(' ')}\n`);
    const quiet = runCli(node, ['run', '--yes', ...nodeArgs(node)], { pathBefore: [failing] });
    expect(quiet.stderr).not.toContain('  command: ');
  });
});

describe('a backup that cannot be written whole', () => {
  it('out of space (a 256 KiB tmpfs as --backup-dir, in a mount namespace of its own): the partial backup is removed, nothing changed, exit 1, one line', () => {
    const node = dirtyNode('enospc', { pods: 2 });
    // A file the CNI's IPAM directory holds, bigger than the backup's file system.
    fs.writeFileSync(path.join(node.root, 'var/lib/cni/networks/cbr0/big'), Buffer.alloc(2 << 20, 7));
    const full = scratchDir(node, 'full');
    fs.mkdirSync(full);
    const left = path.join(scratchDir(node, 'left'));
    const before = snapshot(node);
    resetCalls(node);
    const argv = cliArgv(node, ['run', '--yes', '--json', ...nodeArgs(node), '--backup-dir', full]);
    // The tmpfs exists only in this namespace; what is left in it is listed before it goes.
    const script = `mount -t tmpfs -o size=256k tmpfs ${full} || exit 99; nsenter ${argv.map((a) => `'${a}'`).join(' ')}; rc=$?; ls -A ${full} > ${left}; exit $rc`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], {
      encoding: 'utf8',
      env: cliEnv(node),
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    expect(r.status).toBe(1);
    const lines = errorLines(r.stderr);
    expect(lines).toEqual([
      expect.stringMatching(
        // GNU tar says either, depending on how the last write fell short.
        /^cni-sweep: error: phase backup failed: .*(no space left on device|Wrote only \d+ of \d+ bytes); removed the partial backup \S+; nothing on the node was changed$/i,
      ),
    ]);
    expect(fs.readFileSync(left, 'utf8')).toBe('');
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ changed: false, backup: null, failed: { phase: 'backup' } });
    expect(report.phases.find((p: { name: string }) => p.name === 'cni-config').status).toBe('skipped');
    const own = (s: ReturnType<typeof snapshot>) => ({ ...s, files: s.files.filter((f) => !/^var\/lib\/cni-sweep(\/| )/.test(f)) });
    expect(own(snapshot(node))).toEqual(own(before));
    expect(changes(readCalls(node))).toEqual([]);
  });
});

describe('restore checks every member of files.tar against the manifest before it extracts anything', () => {
  /** A node cleaned by a run, and its backup. */
  function backedUp(tag: string) {
    const node = dirtyNode(tag, { pods: 1 });
    const run = runCli(node, ['run', '--yes', '--json', ...nodeArgs(node)]);
    expect(run.code).toBe(0);
    return { node, backup: JSON.parse(run.stdout).backup as string };
  }
  /** What someone who changed files.tar would do next: SHA256SUMS computed again, so the checksums pass. */
  function recomputeSums(backup: string) {
    const sums = path.join(backup, 'SHA256SUMS');
    const files = fs
      .readFileSync(sums, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(66));
    fs.writeFileSync(sums, execFileSync('sha256sum', ['--', ...files], { cwd: backup, encoding: 'utf8' }));
  }
  /** Appends `rel` (made under a scratch directory by `make`) to files.tar with GNU tar. */
  function append(node: FlannelNode, backup: string, rel: string, make: (full: string) => void) {
    const src = scratchDir(node, 'evil');
    const full = path.join(src, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    make(full);
    execFileSync('tar', ['-C', src, '-rf', path.join(backup, 'files.tar'), rel]);
  }

  it.each([
    [
      'an added member outside what the run removed',
      (node: FlannelNode, backup: string) => {
        append(node, backup, 'etc/cron.d/evil', (f) => {
          fs.writeFileSync(f, '* * * * * root touch /pwned\n');
        });
      },
      /files\.tar holds etc\/cron\.d\/evil, which is not one of the paths the run removed$/,
      'etc/cron.d/evil',
    ],
    [
      'an added member inside a removed directory',
      (node: FlannelNode, backup: string) => {
        append(node, backup, 'var/lib/cni/networks/cbr0/10.244.1.250', (f) => {
          fs.writeFileSync(f, 'x');
        });
      },
      /files\.tar holds var\/lib\/cni\/networks\/cbr0\/10\.244\.1\.250, which the manifest does not list$/,
      'var/lib/cni/networks/cbr0/10.244.1.250',
    ],
    [
      'a symlink pointing outside the root',
      (node: FlannelNode, backup: string) => {
        append(node, backup, 'var/lib/cni/networks/cbr0/etc', (f) => {
          fs.symlinkSync('../../../../../../../../etc', f);
        });
      },
      /files\.tar holds var\/lib\/cni\/networks\/cbr0\/etc, a link pointing outside the root \(\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\)$/,
      'var/lib/cni/networks/cbr0/etc',
    ],
    [
      'a member whose size changed',
      (node: FlannelNode, backup: string) => {
        const rel = 'etc/cni/net.d/10-flannel.conflist';
        execFileSync('tar', ['--delete', '-f', path.join(backup, 'files.tar'), rel]);
        append(node, backup, rel, (f) => {
          fs.writeFileSync(f, '{"name": "cbr0", "plugins": [{"type": "flannel"}, {"type": "evil"}]}\n');
        });
      },
      /files\.tar member etc\/cni\/net\.d\/10-flannel\.conflist does not match the manifest: size \d+, recorded \d+$/,
      'etc/cni/net.d/10-flannel.conflist',
    ],
  ])('%s, with SHA256SUMS recomputed: exit 2, one line, nothing written', (_what, tamper, message, rel) => {
    const { node, backup } = backedUp('tamper');
    tamper(node, backup);
    recomputeSums(backup);
    const before = snapshot(node);
    for (const args of [['--dry-run'], []]) {
      const r = runCli(node, ['restore', backup, ...args]);
      expect(r.code).toBe(2);
      expect(errorLines(r.stderr)).toEqual([expect.stringMatching(message)]);
      expect(r.stdout).toBe('');
    }
    expect(snapshot(node)).toEqual(before);
    expect(fs.existsSync(path.join(node.root, rel))).toBe(false);
  });
});
