// Phases and the runner never print: they emit these, and a reporter renders them.
import type { PlannedStep, PodLeft } from './phases/types.js';

/** interrupted: a signal (or lost output) stopped the run before every step of the phase ran. */
export type PhaseStatus = 'ok' | 'nothing-to-do' | 'skipped' | 'failed' | 'interrupted';
export type StepStatus = 'planned' | 'ok' | 'failed' | 'not-run';

export type SweepEvent =
  | { type: 'phase-start'; phase: string; summary: string }
  | { type: 'phase-end'; phase: string; status: PhaseStatus; ms: number }
  | { type: 'step-start'; phase: string; step: PlannedStep }
  | { type: 'step-end'; phase: string; step: PlannedStep; status: StepStatus; ms: number; error?: string }
  | { type: 'note'; phase?: string; text: string }
  | { type: 'warn'; text: string };

export interface Reporter {
  emit(e: SweepEvent): void;
  /** Stops spinners before anything else is written (prompts, final output). */
  pause(): void;
}

export const silentReporter: Reporter = { emit() {}, pause() {} };

// What a sweep returns and `--json` prints; the journal records it after every phase.
export interface StepReport {
  argv: string[];
  stdin?: string;
  status: StepStatus;
  ms: number;
  error?: string;
  exitCode?: number | null;
  stderr?: string;
}

export interface PhaseReport {
  name: string;
  status: PhaseStatus;
  notes: string[];
  steps: StepReport[];
  /** Wall time of an applied phase: planning it again, then its steps (some of which run side by side). */
  ms?: number;
}

/** What a run removed, by kind; the JSON report and the end-of-run summary count these. */
export const REMOVED_KINDS = [
  'configs',
  'statePaths',
  'interfaces',
  'routes',
  'firewallRules',
  'firewallChains',
  'nftablesTables',
  'ipsets',
  'namespaces',
  'sandboxes',
  'modules',
  'bpfAttachments',
  'bpfPins',
] as const;
export type RemovedKind = (typeof REMOVED_KINDS)[number];
export type Removed = Record<RemovedKind, { count: number; names: string[] }>;

/** The version of the report's shape (schema/report.schema.json); raised when a field changes meaning or goes. */
export const REPORT_SCHEMA_VERSION = 1;

export const emptyRemoved = (): Removed => Object.fromEntries(REMOVED_KINDS.map((k) => [k, { count: 0, names: [] }])) as unknown as Removed;

/** Which kind a step's `removes` item counts as; firewall items are "<table> <chain> rule" or "chain <name>". */
export function removedKind(stepKind: string, item: string): RemovedKind | null {
  if (/ rule or chain$/.test(stepKind)) return item.startsWith('chain ') ? 'firewallChains' : 'firewallRules';
  const kinds: Record<string, RemovedKind> = {
    'CNI config': 'configs',
    'CNI state': 'statePaths',
    interface: 'interfaces',
    route: 'routes',
    'nftables table': 'nftablesTables',
    ipset: 'ipsets',
    'network namespace': 'namespaces',
    'pod sandbox': 'sandboxes',
    'kernel module': 'modules',
    'BPF attachment': 'bpfAttachments',
    'BPF pin': 'bpfPins',
  };
  return kinds[stepKind] ?? null;
}

/** Adds what a step removes (or would remove) to a tally. */
export function tallyRemoved(into: Removed, removes: { kind: string; items: string[] } | undefined): void {
  if (!removes) return;
  const backend = / rule or chain$/.test(removes.kind) ? `${removes.kind.replace(/ rule or chain$/, '')} ` : '';
  for (const item of removes.items) {
    const k = removedKind(removes.kind, item);
    if (!k) continue;
    into[k].count++;
    into[k].names.push(backend + (k === 'firewallChains' ? item.replace(/^chain /, '') : item));
  }
}

const WORDS: Record<RemovedKind, [string, string]> = {
  configs: ['CNI config', 'CNI configs'],
  statePaths: ['state path', 'state paths'],
  interfaces: ['interface', 'interfaces'],
  routes: ['route', 'routes'],
  firewallRules: ['firewall rule', 'firewall rules'],
  firewallChains: ['firewall chain', 'firewall chains'],
  nftablesTables: ['nftables table', 'nftables tables'],
  ipsets: ['ipset', 'ipsets'],
  namespaces: ['network namespace', 'network namespaces'],
  sandboxes: ['pod sandbox', 'pod sandboxes'],
  modules: ['kernel module', 'kernel modules'],
  bpfAttachments: ['BPF attachment', 'BPF attachments'],
  bpfPins: ['BPF pin', 'BPF pins'],
};

/** "3 CNI configs, 1 interface, 12 routes", or null when nothing of any kind. */
export function removedCounts(removed: Removed): string | null {
  const parts = (Object.keys(WORDS) as RemovedKind[])
    .filter((k) => removed[k].count > 0)
    .map((k) => `${removed[k].count} ${WORDS[k][removed[k].count === 1 ? 0 : 1]}`);
  return parts.length ? parts.join(', ') : null;
}

export interface Report {
  /** REPORT_SCHEMA_VERSION. */
  schemaVersion: number;
  /** cni-sweep's version. */
  version: string;
  /** When the command started (ISO 8601) and how long it took. */
  startedAt: string;
  durationMs: number;
  /** What the run removed, by kind (a plan removes nothing: all zero). */
  removed: Removed;
  /** A plan only: what a run would remove, and whether it would change the node at all. */
  wouldRemove?: Removed;
  wouldChange?: boolean;
  changed: boolean;
  dryRun: boolean;
  node: string;
  root: string;
  cni: string[];
  backup: string | null;
  /** The backups of the unfinished runs this one took up, oldest first: what those runs removed. */
  earlierBackups?: string[];
  phases: PhaseReport[];
  inspected: string[];
  unreadable: string[];
  /** The distribution, its role (k3s/rke2: server or agent) and why (detected, or --distro). */
  distro?: { name: string; role: string | null; evidence: string[] };
  /** What detection found and why, when --cni was not given. */
  detected?: Array<{ cni: string; evidence: string[] }>;
  /** Per CNI, whether the run removes or keeps it, and why (the selection rule, or --cni). */
  targets?: Array<{ cni: string; action: 'remove' | 'keep'; why: string }>;
  /** What the operator must know (no drain, a non-pod-network config left first ...), from the phases' plans. */
  warnings?: string[];
  /** Set when the run stopped early: the failed phase, or the signal that interrupted it. */
  failed?: { phase: string; error: string; argv?: string[]; exitCode?: number | null; stderr?: string };
  interrupted?: string;
  /** Pods left running on the removed network, without a network (sandboxes not removed), and what to do. */
  podsWithoutNetwork?: PodLeft[];
  podsWithoutNetworkFix?: string;
}
