// The end of a run, in words: what was removed (by kind), where the backup is and how to undo it,
// how long it took, and what the operator still has to do (uncordon, rerun after a failure).
import { removedCounts, type Report } from '../events.js';
import { PHASES } from '../phases/index.js';
import { shellQuote } from '../util/shell.js';
import { plural } from '../util/plural.js';

export { removedCounts } from '../events.js';

const CLEANUP = new Set(PHASES.filter((p) => p.cleanup).map((p) => p.name));

export const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

/** Drained by this run (a drain step ran) and not uncordoned again. */
export function leftCordoned(r: Report): boolean {
  const ran = (name: string) => r.phases.some((p) => p.name === name && p.steps.some((s) => s.status === 'ok'));
  return ran('drain') && !ran('uncordon');
}

/** A drain step that ran and did not end well (failed, or timed out): kubectl had cordoned first. */
function drainTried(r: Report): boolean {
  return r.phases.some((p) => p.name === 'drain' && p.steps.some((s) => s.status === 'failed'));
}

export function runSummary(r: Report): string {
  const out: string[] = [];
  const say = (s: string) => out.push(`cni-sweep: ${s}`);
  const counts = removedCounts(r.removed);
  const took = seconds(r.durationMs);
  const kept = (r.targets ?? []).filter((t) => t.action === 'keep').map((t) => t.cni);
  const stopped = r.failed ?? r.interrupted;
  if (!r.changed && !stopped) {
    say(`node ${r.node}: nothing to do${r.cni.length ? ` for ${r.cni.join(', ')}` : ''} (${took})`);
  } else if (r.interrupted) {
    say(`node ${r.node}: interrupted by ${r.interrupted} after ${took}; ${counts ? `removed ${counts}` : 'nothing was removed'}`);
  } else if (r.failed) {
    say(`node ${r.node}: stopped after ${took}: phase ${r.failed.phase} failed; ${counts ? `removed ${counts}` : 'nothing was removed'}`);
  } else if (!counts) {
    // Only services an earlier run left stopped were started: nothing of a CNI was left to remove.
    say(`node ${r.node}: no CNI state to remove; started what an earlier run left stopped (${took})`);
  } else {
    say(`node ${r.node}: removed ${r.cni.join(', ')} state in ${took}: ${counts}`);
  }
  if (stopped) {
    // What the phases that did not run would have removed is still there: said by phase, not guessed by kind.
    const notDone = r.phases
      .filter((p) => CLEANUP.has(p.name))
      .filter((p) => p.status === 'interrupted' || (p.status === 'skipped' && p.notes.some((n) => n.startsWith('not run'))))
      .map((p) => (p.status === 'interrupted' ? `${p.name} (stopped part way)` : p.name));
    if (notDone.length) say(`not run: ${notDone.join(', ')}; what they remove is still on the node`);
  }
  if (kept.length) say(`kept ${kept.join(', ')} (in use; \`cni-sweep plan\` says why)`);
  if (r.backup) say(`backup: ${r.backup}; to put the files and firewall rules back: cni-sweep restore ${shellQuote(r.backup)}`);
  else if (stopped) say('no backup was written');
  // The unfinished run this one finished removed its part first, into its own backup.
  for (const b of [...(r.earlierBackups ?? [])].reverse())
    say(`and the backup of the unfinished run this one took up: ${b}; what that run removed: cni-sweep restore ${shellQuote(b)}`);
  if (r.podsWithoutNetwork?.length)
    say(
      `${plural(r.podsWithoutNetwork.length, 'pod')} left without a network: ${r.podsWithoutNetwork
        .map((p) => `${p.namespace && p.name ? `${p.namespace}/${p.name}` : p.id}${p.ip ? ` (${p.ip})` : ''}`)
        .join(', ')}\n  fix: ${r.podsWithoutNetworkFix}`,
    );
  if (leftCordoned(r)) say(`node still cordoned: \`kubectl uncordon ${shellQuote(r.node)}\` once the new CNI runs`);
  else if (drainTried(r))
    // kubectl drain cordons before it evicts: a drain that failed or timed out has cordoned the node.
    say(`node may be cordoned (the drain failed after kubectl cordons): \`kubectl uncordon ${shellQuote(r.node)}\` if you do not rerun`);
  else if (stopped) say('node not cordoned by this run');
  if (stopped)
    say(
      `a rerun is safe: \`cni-sweep run\` removes only what is left${r.failed ? ` (fix the cause of the ${r.failed.phase} failure first)` : ''}`,
    );
  return out.join('\n') + '\n';
}
