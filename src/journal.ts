// The journal of the last run, under <root>/var/lib/cni-sweep. A run that crashed half way
// (power loss, SIGKILL) leaves it "running": the next run picks up the facts it had read before
// removing them (network names, pod CIDRs), so it still recognises host-gw routes and untagged
// rules after subnet.env and the conflist are gone.
import { z } from 'zod';
import type { Report } from './events.js';
import type { Host } from './host/host.js';
import type { Snapshot } from './inspect.js';
import type { Detection } from './profiles/detect.js';
import type { Profile } from './profiles/schema.js';
import { networkOf, parsePrefix, type Prefix } from './util/cidr.js';

export const JOURNAL = '/var/lib/cni-sweep/last-run.json';

const Facts = z.object({
  cni: z.string(),
  networks: z.array(z.string()),
  bridges: z.array(z.string()),
  podNetworks: z.array(z.string()),
  nodeSubnets: z.array(z.string()),
});
const JournalSchema = z.object({
  status: z.enum(['running', 'finished', 'failed', 'interrupted']),
  started: z.string(),
  pid: z.number(),
  node: z.string(),
  facts: z.array(Facts),
  /**
   * Units this run stopped and has not started again, written (and waited for) before they are
   * stopped: after a crash the next run starts them. Absent in journals of older versions.
   */
  leftStopped: z.array(z.string()).optional(),
  /** Run with some cleanup phase left out (--only, --skip): finished, but not the whole job. */
  partial: z.boolean().optional(),
  report: z.unknown().optional(),
});
export type Journal = z.infer<typeof JournalSchema>;

export async function readJournal(host: Host): Promise<Journal | null> {
  const text = await host.readFile(JOURNAL).catch(() => null);
  if (!text) return null;
  try {
    return JournalSchema.parse(JSON.parse(text));
  } catch {
    return null; // a torn or foreign journal is ignored, never trusted
  }
}

export function journalFacts(snapshot: Snapshot) {
  return snapshot.facts.map((f) => ({
    cni: f.profile.name,
    networks: f.networks,
    bridges: f.bridges,
    podNetworks: f.podNetworks.map((p) => p.text),
    nodeSubnets: f.nodeSubnets.map((p) => p.text),
  }));
}

/**
 * Whether a journal records a job this node's next run takes up: a run of this node that failed,
 * was interrupted or crashed, or one limited to some cleanup phases.
 */
export function openJob(journal: Journal | null, node: string): journal is Journal {
  return journal !== null && journal.node === node && (journal.status !== 'finished' || journal.partial === true);
}

/**
 * The backups of the unfinished job a journal records (that run's, and those it had taken up),
 * oldest first; none for a finished whole run or another node's journal.
 */
export function earlierBackups(journal: Journal | null, node: string): string[] {
  if (!openJob(journal, node)) return [];
  const r = (journal.report ?? {}) as { backup?: unknown; earlierBackups?: unknown };
  const before = Array.isArray(r.earlierBackups) ? r.earlierBackups.filter((b): b is string => typeof b === 'string') : [];
  return typeof r.backup === 'string' ? [...before, r.backup] : before;
}

/** How a journal's run is named in a message: a run still 'running' in its journal was killed or crashed (a run holds the lock). */
const runName = (j: Journal) => (j.status === 'finished' ? 'run' : j.status === 'running' ? 'unfinished run' : `${j.status} run`);

/** The units an unfinished run of this node stopped and did not start again, for detectDistro. */
export function stoppedByOpenJob(journal: Journal | null, node: string): { units: string[]; by: string } | undefined {
  if (!openJob(journal, node) || !journal.leftStopped?.length) return undefined;
  return { units: journal.leftStopped, by: `the ${runName(journal)} of ${journal.started}` };
}

/**
 * A journal another node wrote (a disk image cloned from it, a --root on its disk) says nothing of
 * this node: its networks and pod CIDRs are not this node's, and taking them up would remove routes
 * and rules of this node's own. Only the units it left stopped are still started (stoppedByEarlierRun):
 * on the same machine, a run under another --node spelling may have stopped them.
 */
export function foreignJournal(journal: Journal | null, node: string): string | null {
  if (!journal || journal.node === node) return null;
  return `not using ${JOURNAL}: the run of ${journal.started} there was on node ${JSON.stringify(journal.node)}, and this is ${JSON.stringify(node)}`;
}

/**
 * The CNIs of a run that failed, was interrupted or crashed, that detection no longer finds: that
 * run may have removed all that shows them (the config, subnet.env, the links) and left the rest
 * (its namespaces, say). The next run finishes the job, as it would with --cni; a CNI found live
 * is still kept (targets.ts).
 */
export function unfinishedRun(journal: Journal | null, known: Profile[], detected: Detection[], node: string): Detection[] {
  if (!openJob(journal, node)) return [];
  const out: Detection[] = [];
  const which = runName(journal);
  const limited = journal.partial ? ', limited to some phases,' : '';
  for (const f of journal.facts) {
    const profile = known.find((p) => p.name === f.cni);
    if (!profile || detected.some((d) => d.profile.name === f.cni) || out.some((d) => d.profile.name === f.cni)) continue;
    out.push({ profile, evidence: [`the ${which} of ${journal.started}${limited} was removing it`] });
  }
  return out;
}

/**
 * Adds what an earlier run knew to the snapshot. An unfinished run's facts are merged in; a
 * finished run's only fill what the node no longer shows (a cleanup split over several
 * `--only` runs loses subnet.env in the first). Returns a note when it used any.
 */
export function resumeFrom(journal: Journal | null, snapshot: Snapshot, node: string): string | null {
  if (!journal || journal.node !== node) return null;
  const finished = journal.status === 'finished';
  let used = false;
  const addPrefixes = (into: Prefix[], texts: string[]) => {
    if (finished && into.length) return;
    for (const t of texts) {
      const p = parsePrefix(t);
      if (p && !into.some((q) => q.text === networkOf(p).text)) {
        into.push(networkOf(p));
        used = true;
      }
    }
  };
  for (const f of snapshot.facts) {
    const old = journal.facts.find((j) => j.cni === f.profile.name);
    if (!old) continue;
    if (!finished || !f.networks.length)
      for (const n of old.networks)
        if (!f.networks.includes(n)) {
          f.networks.push(n);
          used = true;
        }
    if (!finished || !f.bridges.length)
      for (const b of old.bridges)
        if (!f.bridges.includes(b)) {
          f.bridges.push(b);
          used = true;
        }
    addPrefixes(f.podNetworks, old.podNetworks);
    addPrefixes(f.nodeSubnets, old.nodeSubnets);
  }
  if (!used) return null;
  return finished
    ? `using the networks the run of ${journal.started} recorded before it removed them (pass --pod-cidr to override)`
    : `finishing the ${runName(journal)} of ${journal.started} (pid ${journal.pid}): using the networks it had recorded`;
}

/**
 * Written after every phase. The report in it leaves out the steps' stdin (the batches: hundreds of
 * kilobytes on a full node, rewritten each time, and what stalls the write on a busy disk); the
 * --json report and the backup's undo scripts carry them.
 */
export function journalText(
  status: Journal['status'],
  started: Date,
  node: string,
  snapshot: Snapshot,
  report: Report,
  leftStopped: string[] = [],
  partial = false,
): string {
  const phases = report.phases.map((p) => ({
    ...p,
    steps: p.steps.map(({ stdin, ...step }) => (stdin === undefined ? step : { ...step, stdinBytes: Buffer.byteLength(stdin) })),
  }));
  const j: Journal = {
    status,
    started: started.toISOString(),
    pid: process.pid,
    node,
    facts: journalFacts(snapshot),
    leftStopped,
    ...(partial ? { partial } : {}),
    report: { ...report, phases },
  };
  return JSON.stringify(j, null, 2) + '\n';
}
