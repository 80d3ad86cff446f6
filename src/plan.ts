// Rendering a plan: as a runnable bash script (the dry-run audit) and as a short list by kind
// (the confirmation prompt).
import type { Phase, PhasePlan, PlannedStep } from './phases/types.js';
import { waitsFor } from './phases/types.js';
import type { Report } from './run.js';
import { removedCounts } from './events.js';
import { detachedFiles } from './host/mounts.js';
import { commentLine, heredocDelimiter, shellQuote } from './util/shell.js';

/**
 * Values a plan script names once, in its header, and refers to by name: the backup directory (its
 * name carries the time), the node and the time of the plan. Two plans of identical nodes then
 * differ in the header only, and `diff` shows what really differs between two nodes.
 */
export interface ScriptVars {
  node: string;
  created: string;
  backup: string | null;
}

/** A name the script's variables may stand for in the manifest's JSON: nothing JSON or the shell would escape. */
const PLAIN = /^[A-Za-z0-9._:-]+$/;

function word(arg: string, vars: ScriptVars | undefined, isKubectl: boolean): string {
  if (vars?.backup) {
    if (arg === vars.backup) return '"$BACKUP"';
    if (arg.startsWith(`${vars.backup}/`)) return `"$BACKUP"${shellQuote(arg.slice(vars.backup.length))}`;
  }
  if (vars && isKubectl && arg === vars.node) return '"$NODE"';
  return shellQuote(arg);
}

/** One command; in a script, with more than one operand after `--`, one operand per line (a diff then shows the path that differs). */
function command(argv: string[], vars: ScriptVars | undefined): string {
  const words = argv.map((a) => word(a, vars, argv[0] === 'kubectl'));
  const dd = argv.indexOf('--');
  if (!vars || dd < 0 || argv.length - dd - 1 < 2) return words.join(' ');
  return [words.slice(0, dd + 1).join(' '), ...words.slice(dd + 1).map((w) => `  ${w}`)].join(' \\\n');
}

/**
 * A heredoc body: quoted (nothing expands) unless it carries the header's values, which then stand
 * as ${VAR}; everything else is escaped so that bash writes exactly the bytes of `body`.
 */
function heredoc(body: string, vars: ScriptVars | undefined): { open: string; body: string } {
  const tag = heredocDelimiter(body);
  const subs: Array<[string, string]> = [];
  if (vars?.backup && PLAIN.test(vars.backup.replace(/\//g, ''))) subs.push([vars.backup, '${BACKUP}']);
  if (vars && PLAIN.test(vars.created)) subs.push([`"${vars.created}"`, '"${CREATED}"']);
  if (vars && PLAIN.test(vars.node)) subs.push([`"${vars.node}"`, '"${NODE}"']);
  const used = subs.filter(([from]) => body.includes(from));
  if (!used.length) return { open: `<<'${tag}'`, body };
  let out = body.replace(/[\\$`]/g, (c) => `\\${c}`);
  for (const [from, to] of used) out = out.split(from).join(to);
  return { open: `<<${tag}`, body: out };
}

export function renderStep(step: PlannedStep, vars?: ScriptVars): string {
  let cmd = command(step.argv, vars);
  if (step.cwd) cmd = `(cd ${word(step.cwd, vars, false)} && ${cmd})`;
  if (step.stdoutTo) cmd = `${cmd} > ${word(step.stdoutTo, vars, false)}`;
  if (step.stdin === undefined) return cmd;
  const doc = heredoc(step.stdin.endsWith('\n') ? step.stdin : step.stdin + '\n', vars);
  return `${cmd} ${doc.open}\n${doc.body}${doc.open.replace(/^<<'?|'$/g, '')}`;
}

/** The directory the backup phase creates, if it has work. */
function backupDirOf(plans: Array<{ phase: Phase; plan: PhasePlan | null }>): string | null {
  const plan = plans.find((p) => p.phase.name === 'backup')?.plan;
  return plan?.steps.length ? (plan.facts?.backupDir ?? null) : null;
}

/** A note as the script says it: the backup directory and the node by their variables' names. */
function byName(note: string, vars: ScriptVars): string {
  let out = vars.backup ? note.split(vars.backup).join('$BACKUP') : note;
  if (PLAIN.test(vars.node)) out = out.replace(new RegExp(`(?<![\\w.-])${vars.node.replace(/\./g, '\\.')}(?![\\w-]|\\.\\w)`, 'g'), '$NODE');
  return out;
}

/** A comment on a step whose shape is not self-explanatory. */
function aboutStep(step: PlannedStep): string | null {
  if (step.argv[0] === 'ip' && /^link delete group \d+$/m.test(step.stdin ?? ''))
    return '# the links go into one unused link group that is then deleted at once: one teardown, not one per veth';
  if (detachedFiles(step.argv))
    return "# one process for all the namespace files: in a private mount namespace it unmounts the mount holding them (there only), then unlinks them by name, which detaches the node's mounts of each (Linux 3.18+); umount per file would read the whole mount table once per file";
  return null;
}

/**
 * What the script says of a phase a run starts beside others (Phase.after): the earlier phases with
 * commands that it does not wait for, directly or through the phases it waits for. Null when there
 * are none.
 */
function besideNote(plans: Array<{ phase: Phase; plan: PhasePlan | null }>, phase: Phase): string | null {
  if (!phase.after) return null;
  const phases = plans.map((p) => p.phase);
  const names = phases.map((p) => p.name);
  const waited = new Set<string>();
  const wait = (name: string): void => {
    if (waited.has(name)) return;
    waited.add(name);
    const i = names.indexOf(name);
    if (i >= 0) for (const n of waitsFor(phases, i)) wait(n);
  };
  for (const n of phase.after) wait(n);
  const beside = plans
    .slice(0, names.indexOf(phase.name))
    .filter((p) => !waited.has(p.phase.name) && p.plan?.steps.length)
    .map((p) => p.phase.name);
  if (!beside.length) return null;
  const waits = `${phase.after.join(' and ')} ${phase.after.length > 1 ? 'have' : 'has'}`;
  return `# a run starts it once ${waits} ended, beside ${beside.join(', ')}: it changes none of what they change`;
}

export function renderScript(plans: Array<{ phase: Phase; plan: PhasePlan | null }>, report: Report, version: string): string {
  const out: string[] = [];
  const ran = plans.filter((p) => p.plan).map((p) => p.phase.name);
  const skipped = plans.filter((p) => !p.plan).map((p) => p.phase.name);
  out.push('#!/usr/bin/env bash');
  out.push(`# cni-sweep ${version} plan: the exact commands \`cni-sweep run\` would execute, in order.`);
  out.push(`# node: ${report.node}`);
  out.push(`# planned: ${report.startedAt}`);
  if (report.root !== '/') out.push(`# root: ${report.root}`);
  if (report.distro)
    out.push(
      `# distro: ${report.distro.name}${report.distro.role ? ` (${report.distro.role})` : ''}: ${report.distro.evidence.join(', ')}`,
    );
  const none = report.detected?.length ? 'none to remove' : 'none found';
  out.push(`# cni: ${report.cni.join(', ') || none}${report.detected ? ' (detected)' : ' (--cni)'}`);
  for (const d of report.detected ?? [])
    out.push(
      `#   found ${d.cni}: ${d.evidence.slice(0, 8).join(', ')}${d.evidence.length > 8 ? `, and ${d.evidence.length - 8} more` : ''}`,
    );
  for (const t of report.targets ?? []) out.push(`#   ${t.action} ${t.cni}: ${t.why}`);
  for (const w of report.warnings ?? []) out.push(`# WARNING: ${w}`);
  out.push(`# phases: ${ran.join(' ')}`);
  if (skipped.length) out.push(`# skipped: ${skipped.join(' ')}`);
  const failed = (what: string) => report.unreadable.some((u) => u === what || u.startsWith(`${what} `) || u.startsWith(`${what}:`));
  out.push(`# inspected: ${report.inspected.filter((x) => !failed(x)).join(', ') || 'nothing'}`);
  const notRead = report.inspected.filter(failed);
  if (notRead.length) out.push(`# not read: ${notRead.join(', ')}`);
  for (const u of report.unreadable) out.push(`# could not read: ${u}`);
  const gap = leftOut(report.unreadable);
  if (gap) out.push(gap);
  const steps = plans.reduce((n, p) => n + (p.plan?.steps.length ?? 0), 0);
  out.push(
    steps
      ? `# ${steps} ${steps === 1 ? 'command' : 'commands'}; run as root on the node. It stops at the first command that fails (or on Ctrl-C), and then starts again what it had stopped, as run does.`
      : '# nothing to do: this node holds no state of the CNI.',
  );
  const counts = report.wouldRemove ? removedCounts(report.wouldRemove) : null;
  if (counts) out.push(`# would remove: ${counts}`);
  if (report.failed) out.push(`# refused: ${report.failed.error}`);
  out.push('set -euo pipefail');
  const vars: ScriptVars = { node: report.node, created: report.startedAt, backup: backupDirOf(plans) };
  out.push(`NODE=${shellQuote(vars.node)}`);
  out.push(`CREATED=${shellQuote(vars.created)}`);
  if (vars.backup) out.push(`BACKUP=${shellQuote(vars.backup)}`);
  // What the script has stopped and not started yet: a failure or a signal from there on starts it
  // again (bash runs the EXIT trap; INT, TERM and HUP exit through it), as run does.
  const stopped: string[] = [];
  /** The traps once `stopped` changed from `before` units: set on the first stop, cleared after the last start. */
  const restart = (before: number) => {
    if (!stopped.length) {
      out.push('trap - EXIT INT TERM HUP');
      return;
    }
    if (!before) out.push("trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP");
    out.push(`trap ${shellQuote(`systemctl start ${[...stopped].reverse().map(shellQuote).join(' ')}`)} EXIT`);
  };
  for (const { phase, plan } of plans) {
    if (!plan) continue;
    out.push('');
    out.push(`# == ${phase.name}: ${plan.steps.length ? phase.summary : 'nothing to do'}`);
    const beside = plan.steps.length ? besideNote(plans, phase) : null;
    if (beside) out.push(beside);
    for (const n of plan.notes) out.push(`# ${byName(n, vars)}`);
    for (const s of plan.steps) {
      const about = aboutStep(s);
      if (about) out.push(about);
      out.push(renderStep(s, vars));
      const [bin, verb, ...units] = s.argv;
      if (bin !== 'systemctl' || (verb !== 'stop' && verb !== 'start')) continue;
      const before = stopped.length;
      if (verb === 'stop') stopped.push(...units.filter((u) => !stopped.includes(u)));
      else for (const u of units) if (stopped.includes(u)) stopped.splice(stopped.indexOf(u), 1);
      if (stopped.length !== before) restart(before);
    }
  }
  // Comments carry names from the node (files, networks, devices, errors): none may end its line.
  return out.map((l) => (l.startsWith('#') ? commentLine(l) : l)).join('\n') + '\n';
}

/**
 * What could not be read, the plan has no changes for: said once, in words, so that nobody takes a
 * plan made without root for the whole of what a run would do.
 */
function leftOut(unreadable: string[]): string | null {
  if (!unreadable.length) return null;
  const kinds = new Set<string>();
  for (const u of unreadable) {
    const what = u.split(/[\s:]/)[0] ?? u;
    if (/^ip6?tables/.test(what)) kinds.add('iptables rules');
    else if (what === 'nft') kinds.add('nftables tables');
    else if (what === 'ipset') kinds.add('ipsets');
    else if (what === 'crictl') kinds.add('pod sandboxes');
    else kinds.add(what);
  }
  const notRoot = unreadable.some((u) => /permission denied|operation not permitted|you must be root/i.test(u));
  return `# LEFT OUT: ${[...kinds].join(', ')} could not be read${notRoot ? ' (not root)' : ''}: this plan has no changes for them; a run as root reads them and may remove more`;
}

/** What a run will remove, grouped by kind in phase order, for the confirmation prompt. */
export function removalSummary(plans: Array<{ plan: PhasePlan }>): string[] {
  const entries = new Map<string, string[] | string>();
  for (const { plan } of plans) {
    for (const s of plan.steps) {
      if (!s.removes) continue;
      if (s.removes.summary) {
        entries.set(`${entries.size}:${s.removes.kind}`, `${s.removes.kind.replace(/ rule or chain$/, '')}: ${s.removes.summary}`);
        continue;
      }
      const items = entries.get(s.removes.kind);
      // Appended in place: a node's thousands of items would otherwise be copied once per step.
      if (Array.isArray(items)) for (const item of s.removes.items) items.push(item);
      else entries.set(s.removes.kind, [...s.removes.items]);
    }
  }
  const lines = [...entries].map(([kind, v]) => {
    if (typeof v === 'string') return v;
    const groups = grouped(v);
    const shown = groups.slice(0, 6).join(', ');
    return `${kind} (${v.length}): ${shown}${groups.length > 6 ? `, and ${groups.length - 6} more` : ''}`;
  });
  return lines;
}

/** Container and sandbox ids, netns uuids, veth suffixes: the part of a name that differs per pod. */
const PER_POD = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{8,}/g;

/**
 * Names that differ only in a per-pod id, shown once as a pattern with their count
 * (`/var/lib/cni/results/cbr0-*-eth0 (20)`), where the first of them stood; other names as they are.
 */
function grouped(items: string[]): string[] {
  const byPattern = new Map<string, string[]>();
  for (const item of items) {
    const pattern = item.replace(PER_POD, '*');
    const names = byPattern.get(pattern);
    if (names) names.push(item);
    else byPattern.set(pattern, [item]);
  }
  return [...byPattern].map(([pattern, names]) => (names.length > 1 ? `${pattern} (${names.length})` : names[0]!));
}
