// Imported first by main.ts, before the modules it loads allocate anything.
//
// V8 starts the young generation at 1 MB per semi-space and doubles it (to 16 MB, i.e. 32 MB of
// resident memory for the two) whenever many objects survive a scavenge, which a run's parsing
// does: that growth alone was a third of a run's peak memory. A run allocates in short bursts
// (parse a listing, plan, wait for a command), so a young generation kept at its start size costs
// no measurable CPU (more scavenges, each of a smaller space) and keeps 30 MB off the peak.
// --max-semi-space-size is read when V8 sets its heap up, before any JavaScript runs; the growth
// factor is read each time the young generation would grow, so it can be set from here (and
// `node cni-sweep.cjs` needs no flag).
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--semi-space-growth-factor=1');
