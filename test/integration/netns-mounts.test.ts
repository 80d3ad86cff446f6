// The netns phase on real mounts, laid out as on a node: <root>/run/netns a bind mount of itself (as
// `ip netns add` leaves it), a directory on a tmpfs <root>/run (as containerd makes it under systemd's
// /run), or both (each namespace then mounted twice), and the root file system of the test's temporary
// root, where the phase falls back to umount. After a run the stale namespaces' files and mounts are
// gone from this mount namespace; the namespaces it keeps stay mounted and usable, and so do the
// mounts that are not the CNI's.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addContainers, removeContainers } from '../helpers/containers-node.js';
import { wrapper } from '../helpers/faults.js';
import { mountsUnder, sh, type FlannelNode, type NetnsMount } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, TestNodes } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 4 });
afterEach(nodes.cleanUp);
// A node whose creation failed half way is not in `nodes`: its mounts go here.
afterAll(() => {
  const tmp = process.env.TMPDIR ?? '/tmp';
  for (const d of fs.readdirSync(tmp).filter((n) => n.startsWith('cni-sweep-nsmount-')))
    for (const m of mountsUnder(path.join(tmp, d)))
      try {
        sh('umount', ['--lazy', m]);
      } catch {
        /* gone with the one above */
      }
});

/** Mount points in this process's mount namespace (each mount once: a path mounted twice is there twice). */
const mounted = (): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter(Boolean);

/** Whether the namespace at `file` can be entered and has its eth0 (or lo). */
const usable = (file: string, dev = 'eth0') =>
  execFileSync('nsenter', [`--net=${file}`, 'ip', '-o', 'link', 'show', 'dev', dev], { encoding: 'utf8' }).includes(dev);

const netnsPhase = (stdout: string) =>
  (JSON.parse(stdout) as { phases: Array<{ name: string; notes: string[]; steps: Array<{ argv: string[] }> }> }).phases.find(
    (p) => p.name === 'netns',
  )!;

interface Busy {
  n: FlannelNode;
  dir: string;
  /** Flannel's stale namespaces (real paths), and the one an unmounted stale file names. */
  stale: string[];
  unmountedStale: string;
  /** A Flannel pod namespace a process still uses, and another runtime's cni-* namespace. */
  inUse: string;
  foreign: string;
  foreignVeth: string;
  /** Not the CNI's: a namespace file `ip netns add` made, and (on a tmpfs /run) a tmpfs beside run/netns. */
  siteNetns: string;
  siteMount: string | null;
}

/** A node with `how` mounts, and everything the phase must tell apart. */
async function busyNode(tag: string, how: NetnsMount | undefined): Promise<Busy> {
  const n = nodes.make(`nsmount-${tag}`, { netnsMount: how });
  nodes.onCleanup(() => {
    removeContainers(n);
  });
  const c = addContainers(n, { otherCni: 1 });
  const dir = path.join(n.root, 'run/netns');
  const unmountedStale = path.join(dir, 'cni-00000000-0000-0000-0000-00000000dead');
  fs.writeFileSync(unmountedStale, '');
  const siteNetns = path.join(dir, 'nsfast-site');
  fs.writeFileSync(siteNetns, '');
  sh('unshare', [`--net=${siteNetns}`, 'true']);
  let siteMount: string | null = null;
  if (how === 'tmpfs' || how === 'tmpfs+bind') {
    siteMount = path.join(n.root, 'run/nsfast-site');
    fs.mkdirSync(siteMount);
    sh('mount', ['-t', 'tmpfs', 'cni-sweep-test-site', siteMount]);
    fs.writeFileSync(path.join(siteMount, 'kept'), 'site\n');
  }
  const inUse = path.join(dir, n.pods[0]!.netns);
  const sleeper = spawn('nsenter', [`--net=${inUse}`, 'sleep', '600'], { stdio: 'ignore', detached: true });
  nodes.onCleanup(() => process.kill(-sleeper.pid!, 'SIGKILL'));
  for (let i = 0; i < 250 && fs.readlinkSync(`/proc/${sleeper.pid}/ns/net`) === fs.readlinkSync('/proc/self/ns/net'); i++)
    await new Promise((r) => setTimeout(r, 20));
  const stale = n.pods.slice(1).map((p) => path.join(dir, p.netns));
  return { n, dir, stale, unmountedStale, inUse, foreign: c.otherNetns[0]!, foreignVeth: c.otherVeths[0]!, siteNetns, siteMount };
}

/** The mounts a run must leave as they were: everything under the root but the stale namespaces'. */
const keptMounts = (b: Busy, before: string[]) => before.filter((m) => m.startsWith(`${b.n.root}/`) && !b.stale.includes(m));

describe.each<[string, NetnsMount | undefined, (b: Busy) => string | null]>([
  ['a bind mount of itself (ip netns add)', 'bind', (b) => b.dir],
  ['a directory on a tmpfs /run (containerd)', 'tmpfs', (b) => path.join(b.n.root, 'run')],
  ['a bind mount of itself on a shared tmpfs /run (each namespace mounted twice)', 'tmpfs+bind', (b) => path.join(b.n.root, 'run')],
  ['a directory on the root file system', undefined, () => null],
])('run/netns as %s', (_, how, holder) => {
  it('a run removes the stale namespaces and their mounts, and keeps every other namespace and mount, usable', async () => {
    const b = await busyNode(how ?? 'rootfs', how);
    const before = mounted();
    if (how === 'tmpfs+bind') expect(before.filter((m) => m === b.stale[0])).toHaveLength(2);
    for (const f of b.stale) expect(before).toContain(f);

    const r = runCli(b.n, ['run', '--yes', '--json', ...nodeArgs(b.n)]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const phase = netnsPhase(r.stdout);
    const names = [...b.stale, b.unmountedStale].map((f) => path.basename(f)).sort();
    const m = holder(b);
    if (m)
      expect(phase.steps.map((s) => s.argv.slice(0, 11).concat(s.argv.slice(11).sort()))).toEqual([
        ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', expect.any(String), 'sh', b.dir, m, '--', ...names],
      ]);
    else expect(phase.steps.map((s) => s.argv[0])).toEqual(['umount', 'rm']);
    expect(phase.notes).toHaveLength(2);
    expect(phase.notes[0]).toBe(`kept ${b.inUse}: a running process still uses it`);
    expect(phase.notes[1]).toBe(`kept ${b.foreign}: its pod interface pairs with ${b.foreignVeth}, which is not flannel's`);

    const after = mounted();
    for (const f of b.stale) expect(after).not.toContain(f);
    expect(fs.readdirSync(b.dir).sort()).toEqual([b.inUse, b.foreign, b.siteNetns].map((f) => path.basename(f)).sort());
    // Every other mount under the root, as many times as before: the kept namespaces, ip netns's
    // own file, the directory's bind mount, the tmpfs /run and the tmpfs beside run/netns.
    expect(after.filter((x) => x.startsWith(`${b.n.root}/`)).sort()).toEqual(keptMounts(b, before).sort());
    expect(usable(b.inUse, 'lo')).toBe(true);
    expect(usable(b.foreign)).toBe(true);
    expect(usable(b.siteNetns, 'lo')).toBe(true);
    if (b.siteMount) expect(fs.readFileSync(path.join(b.siteMount, 'kept'), 'utf8')).toBe('site\n');
  });
});

describe('run/netns on a tmpfs /run, when the node changes or the removal cannot finish', () => {
  it('a namespace removed by someone else between the plan and the step: the others go, and the run succeeds', async () => {
    const b = await busyNode('gone', 'tmpfs');
    const gone = b.stale[0]!;
    const racing = wrapper(
      path.join(path.dirname(b.n.root), 'racing'),
      'unshare',
      `if [ "$1 $2 $3 $4" = "--mount --propagation private sh" ]; then umount --lazy "${gone}" && rm -f "${gone}" || exit 99; fi`,
    );
    const r = runCli(b.n, ['run', '--yes', '--json', ...nodeArgs(b.n)], { pathBefore: [racing] });
    expect(r.code).toBe(0);
    expect(netnsPhase(r.stdout).steps[0]!.argv).toContain(path.basename(gone));
    for (const f of b.stale) expect(mounted()).not.toContain(f);
    expect(fs.readdirSync(b.dir).sort()).toEqual([b.inUse, b.foreign, b.siteNetns].map((f) => path.basename(f)).sort());
  });

  it('unshare failing says so in one line and loses nothing; the next run removes them', async () => {
    const b = await busyNode('nounshare', 'tmpfs');
    const before = mounted();
    const broken = wrapper(
      path.join(path.dirname(b.n.root), 'broken'),
      'unshare',
      'if [ "$1 $2 $3 $4" = "--mount --propagation private sh" ]; then echo "unshare: unshare failed: Operation not permitted" >&2; exit 1; fi',
    );
    const r = runCli(b.n, ['run', '--yes', ...nodeArgs(b.n)], { pathBefore: [broken] });
    expect(r.code).toBe(1);
    // The step's line and the run's error, each one line naming the command and why.
    expect(r.stderr.split('\n').filter((l) => /unshare failed/.test(l))).toHaveLength(2);
    expect(r.stderr).toMatch(
      /^cni-sweep: error: phase netns failed: unshare --mount --propagation private \.\.\. \(\d+ paths\) exited 1: unshare: unshare failed: Operation not permitted$/m,
    );
    for (const f of b.stale) {
      expect(mounted()).toContain(f);
      expect(usable(f, 'lo')).toBe(true);
    }
    expect(
      mounted()
        .filter((x) => x.startsWith(`${b.n.root}/`))
        .sort(),
    ).toEqual(before.filter((x) => x.startsWith(`${b.n.root}/`)).sort());

    // Flannel's config, state and links went before the netns phase failed: the journal of the
    // failed run names the CNI it was removing, and the next run finishes it without --cni.
    const again = runCli(b.n, ['run', '--yes', '--json', ...nodeArgs(b.n)]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/found flannel: the failed run of \S+ was removing it/);
    for (const f of b.stale) expect(mounted()).not.toContain(f);
    expect(fs.readdirSync(b.dir).sort()).toEqual([b.inUse, b.foreign, b.siteNetns].map((f) => path.basename(f)).sort());
  });

  it('a run killed half way through the files: the next run plans and removes the rest', async () => {
    const b = await busyNode('killed', 'tmpfs+bind');
    // rm, run from the netns directory, removes the first two files it is given, then dies.
    const dying = wrapper(
      path.join(path.dirname(b.n.root), 'dying'),
      'rm',
      `if [ "$PWD" = "${b.dir}" ]; then "$REAL" -f -- "$3" "$4"; kill -9 $$; fi`,
    );
    const r = runCli(b.n, ['run', '--yes', ...nodeArgs(b.n)], { pathBefore: [dying] });
    expect(r.code).toBe(1);
    const left = b.stale.filter((f) => fs.existsSync(f));
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(b.stale.length);
    for (const f of b.stale.filter((x) => !left.includes(x))) expect(mounted()).not.toContain(f);
    for (const f of left) expect(usable(f, 'lo')).toBe(true);

    const plan = runCli(b.n, ['plan', '--json', ...nodeArgs(b.n)]);
    const step = netnsPhase(plan.stdout).steps[0]!.argv;
    expect(step.slice(11).sort()).toEqual(left.map((f) => path.basename(f)).sort());
    const again = runCli(b.n, ['run', '--yes', ...nodeArgs(b.n)]);
    expect(again.code).toBe(0);
    for (const f of b.stale) expect(mounted()).not.toContain(f);
    expect(fs.readdirSync(b.dir).sort()).toEqual([b.inUse, b.foreign, b.siteNetns].map((f) => path.basename(f)).sort());
    expect(usable(b.inUse, 'lo')).toBe(true);
  });
});
