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
  /** Real path backups go under (default <root>/var/backups/cni-sweep). */
  backupDir: string;
  /** The run's start time (names the backup). */
  now: Date;
  version: string;
  /** Refuse (exit 3) rather than run without draining: set for `run --yes`, where no prompt says so. */
  refuseUndrained?: boolean;
  /** --keep-sandboxes: leave the pod sandboxes on the removed network running (they lose their network). */
  keepSandboxes?: boolean;
}

/** A step as planned: what runs, plus what it removes, for the confirmation prompt and the report. */
export interface PlannedStep extends Step {
  /** Kind of thing removed ("interface", "file", "iptables rule" ...) and the items, for humans. */
  removes?: { kind: string; items: string[]; /** One line for the prompt, where a list of items says little. */ summary?: string };
  /** May run at the same time as the concurrent steps next to it (the backup's reads, the firewall batches, the umounts). */
  concurrent?: boolean;
  /**
   * Completes stdin at run time from what the steps before it wrote (the manifest lists the
   * members of files.tar once tar has written it). The plan shows stdin as planned.
   */
  completeStdin?: (host: Host, stdin: string) => Promise<string>;
  /** Per-step timeout; drain sets its own. */
  timeoutMs?: number;
  /** What the backup phase must keep before this step runs. */
  backup?: {
    files?: string[];
    firewall?: { backend: string; family: 4 | 6; save: string; restore: string; undo: string };
    nftTables?: Array<{ family: string; name: string }>;
    /** ipsets the step destroys: saved one by one (`ipset save <name>`), so restore can create them again. */
    ipsets?: string[];
  };
}

/** A pod sandbox left running on the removed network: it has no working network after the run. */
export interface PodLeft {
  id: string;
  name?: string;
  namespace?: string;
  ip?: string;
}

export interface PhasePlan {
  steps: PlannedStep[];
  notes: string[];
  /** What the operator must know before saying yes: shown in the plan header, the prompt and the report. */
  warnings?: string[];
  /** Pods this run leaves without a network (remove-sandboxes when it cannot, or may not, remove them). */
  podsWithoutNetwork?: PodLeft[];
  /** What the phase establishes for the phases after it; the runner records it in their Ctx. */
  facts?: PhaseFacts;
}

/** Facts a phase's plan establishes (in a plan: will establish), which later phases read from Ctx. */
export interface PhaseFacts {
  /** Units it stops, in stop order (stop-kubelet, stop-runtime): start-runtime and start-kubelet start them. */
  stopped?: { kubelet?: string[]; runtime?: string[] };
  /** It drains the node (drain): uncordon undoes that. */
  drained?: boolean;
  /** The directory it writes the backup to (backup): the report's `backup`. */
  backupDir?: string;
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
  // The facts earlier phases returned (PhaseFacts), recorded by the runner; phases only read them.
  /** Units stopped (or, in a plan, to be stopped) by this run, in stop order. */
  stopped: { kubelet: string[]; runtime: string[] };
  /** Whether this run drained (or, in a plan, will drain) the node. */
  drained: boolean;
  /** Plans of the selected cleanup phases against the node as it is now (given by the runner). */
  readonly planCleanup: () => Promise<Map<string, PhasePlan>>;
  /** The backup phase's directory. */
  backupDir?: string;
  /** Units an earlier run stopped and left stopped (it crashed): started again at the end, and why. */
  leftBehind?: { units: string[]; note: string };
}

export interface Phase {
  name: string;
  summary: string;
  /** Cleanup phases remove CNI state; the others (drain, services) only run when there is some. */
  cleanup: boolean;
  /** Runs only when asked for with --with (or --only). */
  optIn?: boolean;
  /**
   * Writes the run's backup (needs ctx.planCleanup): cni-sweep's own files, so its steps change
   * nothing on the node; the runner checks its directory before the run, removes one it could not
   * finish, and reports it.
   */
  writesBackup?: boolean;
  /**
   * The phases whose commands must have ended before this one is planned and run; by default,
   * every phase before it (waitsFor). A cleanup phase that changes none of what the phases between
   * change names fewer, and runs beside them (the firewall beside the links, routes and
   * namespaces; bpf and the links beside cni-state's files).
   */
  after?: string[];
  /** Runs after a failure or an interrupt too, when it has not run yet (starting what was stopped), in list order. */
  afterFailure?: boolean;
  plan(ctx: Ctx): Promise<PhasePlan>;
  /**
   * The reads plan() will make first, which the runner starts (together) once the run knows there
   * is work (a cleanup phase has steps; the others may still be planning): the phases are planned
   * one after another, and their reads (systemd, the CRI) can run side by side and beside that
   * planning. The host keeps the answers until a change, so plan() gets them; nothing is read that
   * plan() would not read.
   */
  reads?(ctx: Ctx): Promise<string[][]>;
}

/** The phases the one at index i of this ordered list waits for: its `after`, by default every phase before it. */
export function waitsFor(phases: readonly Phase[], i: number): string[] {
  return phases[i]!.after ?? phases.slice(0, i).map((p) => p.name);
}

export const nothing = (...notes: string[]): PhasePlan => ({ steps: [], notes: notes.filter(Boolean) });
