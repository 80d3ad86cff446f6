// Says what was found and why; changes nothing. Root and confirmation are checked by the runner.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { Host, RemovalTarget } from '../host/host.js';
import type { Phase, PhasePlan, PlannedStep } from './types.js';
import { networksOf } from '../inspect.js';
import { detachedFiles } from '../host/mounts.js';
import { dirListings } from '../util/dir-listings.js';

export const preflight: Phase = {
  name: 'preflight',
  summary: 'check the node, detect the CNI, record what was found',
  cleanup: false,
  async plan(ctx) {
    const notes: string[] = [];
    for (const f of ctx.snapshot.facts) {
      const cfg = f.configs.map((c) => c.file).join(', ') || 'none';
      const nets = f.podNetworks.map((p) => p.text).join(', ') || 'unknown';
      notes.push(`${f.profile.name}: config ${cfg}; networks ${networksOf(f).join(', ') || 'none'}; pod network ${nets}`);
    }
    const configs = ctx.snapshot.configs;
    if (configs.length > 1) {
      notes.push(`${configs.length} CNI configs present; the runtime uses the first in lexical order: ${configs[0]!.file}`);
    }
    const left = ctx.snapshot.remainingConfigs.map((c) => c.file);
    const removed = ctx.profiles.map((p) => p.name).join(', ');
    if (left.length) notes.push(`kept (${removed ? `not owned by ${removed}` : 'this run removes no CNI'}): ${left.join(', ')}`);
    return { steps: [], notes };
  },
};

/** What a step removes with rm: its operands (real paths), and whether whole trees go (-r). */
function removals(step: PlannedStep): Array<{ path: string; tree: boolean }> {
  // sed -i writes a new file beside the old and renames it over: the same rights as removing it.
  if (step.argv[0] === 'sed' && step.argv[1] === '-i') return [{ path: step.argv[step.argv.length - 1]!, tree: false }];
  if (step.argv[0] !== 'rm') return [];
  const dashes = step.argv.indexOf('--');
  if (dashes < 0) return [];
  const tree = step.argv.slice(1, dashes).some((a) => /^-[a-z]*r/i.test(a));
  return step.argv.slice(dashes + 1).map((p) => ({ path: p, tree }));
}

export function removalTargets(plans: Array<{ plan: PhasePlan | null }>): RemovalTarget[] {
  const steps = plans.flatMap(({ plan }) => plan?.steps ?? []);
  // umount --lazy -- <paths>: the netns and cni-state phases unmount these before they remove them.
  const unmounted = new Set(steps.filter((s) => s.argv[0] === 'umount').flatMap((s) => s.argv.slice(s.argv.indexOf('--') + 1)));
  const targets = steps.flatMap(removals).map((t) => (unmounted.has(t.path) ? { ...t, unmounted: true } : t));
  // The netns files one process unmounts and removes (host/mounts.ts DETACH_SCRIPT).
  for (const s of steps) for (const p of detachedFiles(s.argv) ?? []) targets.push({ path: p, tree: false, unmounted: true });
  // A mount point below a removed tree (Cilium's cgroup2): unmounted first, so what is below it does not count.
  const listed = new Set(targets.map((t) => t.path));
  for (const p of unmounted) if (!listed.has(p)) targets.push({ path: p, tree: false, unmounted: true });
  return targets;
}

/**
 * Checked after planning and before the first change, so that a run never stops half way on what
 * it could have known: every command the plan runs is installed, and (`writes`) the kernel would let
 * every removal happen. A read-only /var/lib/cni found only at cni-state would leave the node with
 * its CNI config gone and the whole dataplane in place.
 */
export async function preflightProblems(
  host: Host,
  plans: Array<{ phase: Phase; plan: PhasePlan | null }>,
  writes: boolean,
): Promise<string[]> {
  const problems: string[] = [];
  const needs = new Map<string, string>();
  for (const { phase, plan } of plans)
    for (const s of plan?.steps ?? []) {
      const [bin] = s.argv;
      if (bin !== undefined && !needs.has(bin)) needs.set(bin, phase.name);
    }
  for (const [bin, phase] of needs) if (!(await host.has(bin))) problems.push(`${bin} is not installed (phase ${phase} runs it)`);
  if (writes && host.unremovable)
    for (const u of await host.unremovable(removalTargets(plans))) problems.push(`cannot remove ${u.path}: ${u.reason}`);
  return problems;
}

/** The deepest existing directory above (or at) a path, resolved, with the rest appended. */
function canonical(p: string): string {
  let head = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...rest.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return path.join(head, ...rest.reverse());
      rest.push(path.basename(head));
      head = up;
    }
  }
}

/**
 * canonical() for many paths, most of them in a few directories (a run removes hundreds of result
 * caches, IPAM files and netns files): each directory is resolved once. A path that is not a
 * symlink resolves to its resolved directory plus its name, which is what canonical() finds for
 * it, without a look at each component; a symlink is resolved whole.
 */
function canonicalizer(): (p: string) => string {
  const dirs = new Map<string, string>();
  // Which entries of a directory are symlinks, from one listing of it instead of an lstat(2) per path.
  const listing = dirListings();
  const isSymlink = (abs: string, parent: string): boolean => {
    const l = listing(parent);
    if (!(l instanceof Error)) return l.get(path.basename(abs)) === 'symlink';
    try {
      return fs.lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
    } catch {
      return false; // unreadable: canonical() goes up to its directory too
    }
  };
  return (p) => {
    const abs = path.resolve(p);
    const parent = path.dirname(abs);
    if (parent === abs) return canonical(abs);
    if (isSymlink(abs, parent)) return canonical(abs);
    let d = dirs.get(parent);
    if (d === undefined) dirs.set(parent, (d = canonical(parent)));
    return path.join(d, path.basename(abs));
  };
}

const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * A backup inside a directory the run removes is deleted right after it is written; one in a CNI
 * config directory is read by the runtime as network configs (manifest.json). Both are bad input.
 */
export function checkBackupDir(backupDir: string, removed: string[], confDirs: string[]): void {
  const dir = canonical(backupDir);
  const resolved = canonicalizer();
  for (const r of removed) {
    if (within(backupDir, r) || within(dir, resolved(r)))
      throw new UsageError(
        `--backup-dir ${backupDir} is inside ${r}, which this run removes`,
        'put backups somewhere the run does not clean',
      );
  }
  for (const c of confDirs) {
    if (within(backupDir, c) || within(dir, canonical(c)))
      throw new UsageError(
        `--backup-dir ${backupDir} is in the CNI config directory ${c}`,
        'the runtime would read the backup as network configs: put backups elsewhere',
      );
  }
}
