// Imported first by main.ts, before the modules it loads allocate anything: how V8's heap grows,
// for a process that reads large listings once each and lets them go (measured at 250 pods and
// 5000 foreign rules, a full run: peak RSS 112-114 MB before, about 90 MB with both).
//
// - The young generation starts at 1 MB per semi-space and doubles (to 16 MB, 32 MB resident for
//   the two) whenever many objects survive a scavenge, which parsing a listing does: that growth
//   was 16 MB of the peak. Kept at its start size, a run makes about 95 scavenges instead of 12,
//   each of a smaller space; its CPU and wall time stayed within the noise of A/B runs.
// - The old generation then takes what outlives a few scavenges, mostly listings and plans a
//   later phase reads again; after a full GC V8 lets it grow to a multiple of what survived (up to
//   4x for a small heap) before the next. At 1.5x, a run makes two or three full GCs of ~15 MB
//   instead of one, a few ms each, and peaks 5 MB lower.
//
// Both are read each time the heap would grow, so they can be set from here and a plain
// `node cni-sweep.cjs` needs no flag (--max-semi-space-size is read only when V8 sets its heap up).
// They are in heap-flags.json because the build needs them too: V8 refuses a code cache made under
// other flags, so the loader sets them before it compiles the bundle, as the build's warm-up did.
import { setFlagsFromString } from 'node:v8';
import flags from './heap-flags.json' with { type: 'json' };

for (const f of flags) setFlagsFromString(f);
