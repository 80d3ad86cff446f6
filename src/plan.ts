// Rendering a plan: as a runnable bash script (the dry-run audit) and as a short list by kind
// (the confirmation prompt).
import type { Phase, PhasePlan, PlannedStep } from './phases/types.js';
import type { Report } from './run.js';
import { commentLine, heredocDelimiter, renderArgv, shellQuote } from './util/shell.js';

export function renderStep(step: PlannedStep): string {
  let cmd = renderArgv(step.argv);
  if (step.cwd) cmd = `(cd ${shellQuote(step.cwd)} && ${cmd})`;
  if (step.stdoutTo) cmd = `${cmd} > ${shellQuote(step.stdoutTo)}`;
  if (step.stdin === undefined) return cmd;
  const body = step.stdin.endsWith('\n') ? step.stdin : step.stdin + '\n';
  const tag = heredocDelimiter(body);
  return `${cmd} <<'${tag}'\n${body}${tag}`;
}

export function renderScript(plans: Array<{ phase: Phase; plan: PhasePlan | null }>, report: Report, version: string): string {
  const out: string[] = [];
  const ran = plans.filter((p) => p.plan).map((p) => p.phase.name);
  const skipped = plans.filter((p) => !p.plan).map((p) => p.phase.name);
  out.push('#!/usr/bin/env bash');
  out.push(`# cni-sweep ${version} plan: the exact commands \`cni-sweep run\` would execute, in order.`);
  out.push(`# node: ${report.node}`);
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
      ? `# ${steps} command(s); run as root on the node. It stops at the first command that fails.`
      : '# nothing to do: this node holds no state of the CNI.',
  );
  if (report.failed) out.push(`# refused: ${report.failed.error}`);
  out.push('set -euo pipefail');
  for (const { phase, plan } of plans) {
    if (!plan) continue;
    out.push('');
    out.push(`# == ${phase.name}: ${plan.steps.length ? phase.summary : 'nothing to do'}`);
    for (const n of plan.notes) out.push(`# ${n}`);
    for (const s of plan.steps) out.push(renderStep(s));
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
      entries.set(s.removes.kind, [...(Array.isArray(items) ? items : []), ...s.removes.items]);
    }
  }
  const lines = [...entries].map(([kind, v]) => {
    if (typeof v === 'string') return v;
    const shown = v.slice(0, 6).join(', ');
    return `${kind} (${v.length}): ${shown}${v.length > 6 ? `, and ${v.length - 6} more` : ''}`;
  });
  return lines;
}
