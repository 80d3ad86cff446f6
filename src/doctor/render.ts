// Doctor output: text for people (stdout), and the same as one JSON document with --json.
import { renderArgv } from '../util/shell.js';
import { isWholeRun, kubectl, plural, runFix } from './helpers.js';
import { isHealthy } from './index.js';
import type { Finding, NodeView, Severity } from './types.js';

export interface DoctorJson {
  healthy: boolean;
  node: string;
  root: string;
  /** The CNIs of the config the runtime uses. */
  cniInUse: string[];
  /** fix: the recommended command when that stands for the finding's fix (recommended.fixes); then: what to run after fix. */
  findings: Array<
    Omit<Finding, 'fix' | 'then' | 'removedWith'> & { fix: string | null; fixArgv: string[] | null; then?: string; thenArgv?: string[] }
  >;
  /** The one command that fixes the findings it names (a whole cni-sweep run); null when none is. */
  recommended: { command: string; argv: string[]; fixes: string[] } | null;
  notChecked: string[];
}

/**
 * One whole run that removes every CNI a finding's fix removes whole: it stands for those fixes,
 * and for the fixes of findings that go with those CNIs (their stale IPAM, their pods' veths).
 */
export function recommend(view: NodeView, findings: Finding[]): { argv: string[]; covers: Finding[] } | null {
  const cnis: string[] = [];
  for (const f of findings) if (isWholeRun(f.fix)) for (const c of f.fix[3]!.split(',')) if (!cnis.includes(c)) cnis.push(c);
  if (!cnis.length) return null;
  const covers = findings.filter(
    (f) => isWholeRun(f.fix) || (f.fix && f.removedWith?.length && f.removedWith.every((c) => cnis.includes(c))),
  );
  return { argv: runFix(view, cnis), covers };
}

export function toJson(view: NodeView, findings: Finding[]): DoctorJson {
  const rec = recommend(view, findings);
  return {
    healthy: isHealthy(findings),
    node: view.node,
    root: view.root,
    cniInUse: [...view.inUse],
    findings: findings.map((finding) => {
      const { id, severity, title, evidence, why, then } = finding;
      const covered = rec?.covers.includes(finding) ?? false;
      const fix = covered ? rec!.argv : finding.fix;
      const after = covered || !fix ? null : (then ?? null);
      return {
        id,
        severity,
        title,
        evidence,
        why,
        fix: fix ? renderArgv(fix) : null,
        fixArgv: fix,
        ...(after ? { then: renderArgv(after), thenArgv: after } : {}),
      };
    }),
    recommended: rec && { command: renderArgv(rec.argv), argv: rec.argv, fixes: [...new Set(rec.covers.map((f) => f.id))] },
    notChecked: view.notChecked,
  };
}

const COLORS: Record<Severity, string> = { error: '\x1b[31m', warning: '\x1b[33m', info: '\x1b[36m' };
/** Evidence lines shown per finding without --verbose. */
const SHOWN = 10;

export function renderText(view: NodeView, findings: Finding[], o: { color: boolean; verbose: boolean }): string {
  const paint = (code: string, s: string) => (o.color ? `${code}${s}\x1b[0m` : s);
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  const where = `node ${view.node}${view.root !== '/' ? ` (root ${view.root})` : ''}`;
  const problems = findings.length - count('info');
  const tally = (['error', 'warning', 'info'] as const).filter((s) => count(s)).map((s) => plural(count(s), s === 'info' ? 'note' : s));
  const out: string[] = [
    problems
      ? `cni-sweep doctor: ${where}: ${plural(problems, 'finding')} (${tally.join(', ')})`
      : `cni-sweep doctor: ${where}: healthy${tally.length ? ` (${tally.join(', ')})` : ', no findings'}`,
  ];
  const used = view.configs.find((c) => c.config);
  const none = 'none (no CNI config: kubelet reports the node NotReady until a pod network installs one)';
  out.push(`CNI in use: ${used ? `${[...view.inUse].join(', ') || 'unknown'} (${used.file})` : none}`);
  const rec = recommend(view, findings);
  for (const f of findings) {
    out.push('', `${paint(COLORS[f.severity], f.severity.padEnd(7))} ${f.id}: ${paint('\x1b[1m', f.title)}`);
    const ev = o.verbose ? f.evidence : f.evidence.slice(0, SHOWN);
    ev.forEach((e, i) => out.push(`  ${i ? '         ' : 'evidence:'} ${e}`));
    if (ev.length < f.evidence.length) out.push(`           ... and ${f.evidence.length - ev.length} more (--verbose or --json shows all)`);
    out.push(`  why:      ${f.why}`);
    if (rec?.covers.includes(f)) out.push('  fix:      the recommended command below');
    else {
      out.push(`  fix:      ${f.fix ? renderArgv(f.fix) : 'no single command: see why'}`);
      if (f.fix && f.then) out.push(`  then:     ${renderArgv(f.then)}`);
    }
  }
  if (view.notChecked.length) out.push('', ...view.notChecked.map((n) => `not checked: ${n}`));
  if (rec) {
    out.push(
      '',
      `recommended: ${paint('\x1b[1m', renderArgv(rec.argv))}`,
      `  fixes:    ${[...new Set(rec.covers.map((f) => f.id))].join(', ')}`,
      '  what:     one run in the safe order: drain, stop kubelet and the runtime, back up, remove, start them again',
      `  first:    the same options to \`cni-sweep plan\` print every command it will run`,
      `  after:    the node stays cordoned: \`${renderArgv(kubectl(view, 'uncordon', view.node))}\` once a pod network runs`,
    );
  }
  return out.join('\n') + '\n';
}
