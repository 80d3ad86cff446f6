import type { Host, Step } from '../host/host.js';
import type { Gaps, Snapshot } from '../inspect.js';
import type { Profile } from '../profiles/schema.js';
import type { Prefix } from '../util/cidr.js';

export interface RunOptions {
  node: string;
  kubeconfig?: string;
  podCidrs: Prefix[];
  uncordon: boolean;
  dryRun: boolean;
  drainTimeoutSec: number;
}

/** A step as planned: what runs, plus what it removes, for the confirmation prompt and the report. */
export interface PlannedStep extends Step {
  /** Kind of thing removed ("interface", "file", "iptables rule" ...) and the items, for humans. */
  removes?: { kind: string; items: string[] };
  /** Per-step timeout; drain sets its own. */
  timeoutMs?: number;
}

export interface PhasePlan {
  steps: PlannedStep[];
  notes: string[];
}

export interface Ctx {
  host: Host;
  opts: RunOptions;
  profiles: Profile[];
  snapshot: Snapshot;
  gaps: Gaps;
  /** Names of the phases taking part in this run. */
  selected: Set<string>;
  /** Whether any cleanup phase has something to remove; service phases do nothing otherwise. */
  hasWork: boolean;
  /** Units stopped (or, in a plan, to be stopped) by this run, in stop order. */
  stopped: { kubelet: string[]; runtime: string[] };
  /** Whether this run drained (or, in a plan, will drain) the node. */
  drained: boolean;
}

export interface Phase {
  name: string;
  summary: string;
  /** Cleanup phases remove CNI state; the others (drain, services) only run when there is some. */
  cleanup: boolean;
  plan(ctx: Ctx): Promise<PhasePlan>;
}

export const nothing = (...notes: string[]): PhasePlan => ({ steps: [], notes: notes.filter(Boolean) });
