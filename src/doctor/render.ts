// Doctor output: text for people (stdout), and the same as one JSON document with --json.
import { renderArgv } from '../util/shell.js';
import { plural } from './helpers.js';
import { isHealthy } from './index.js';
import type { Finding, NodeView, Severity } from './types.js';

export interface DoctorJson {
  healthy: boolean;
  node: string;
  root: string;
  /** The CNIs of the config the runtime uses. */
  cniInUse: string[];
  findings: Array<Omit<Finding, 'fix'> & { fix: string | null; fixArgv: string[] | null }>;
  notChecked: string[];
}

export function toJson(view: NodeView, findings: Finding[]): DoctorJson {
  return {
    healthy: isHealthy(findings),
    node: view.node,
    root: view.root,
    cniInUse: [...view.inUse],
    findings: findings.map((f) => ({ ...f, fix: f.fix ? renderArgv(f.fix) : null, fixArgv: f.fix })),
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
  out.push(`CNI in use: ${used ? `${[...view.inUse].join(', ') || 'unknown'} (${used.file})` : 'none (no CNI config)'}`);
  for (const f of findings) {
    out.push('', `${paint(COLORS[f.severity], f.severity.padEnd(7))} ${f.id}: ${paint('\x1b[1m', f.title)}`);
    const ev = o.verbose ? f.evidence : f.evidence.slice(0, SHOWN);
    ev.forEach((e, i) => out.push(`  ${i ? '         ' : 'evidence:'} ${e}`));
    if (ev.length < f.evidence.length) out.push(`           ... and ${f.evidence.length - ev.length} more (--verbose or --json shows all)`);
    out.push(`  why:      ${f.why}`);
    out.push(`  fix:      ${f.fix ? renderArgv(f.fix) : 'no single command: see why'}`);
  }
  if (view.notChecked.length) out.push('', ...view.notChecked.map((n) => `not checked: ${n}`));
  return out.join('\n') + '\n';
}
