// Preloaded into cni-sweep by the benchmark (`node -r bench/hwm.cjs dist/cni-sweep.cjs ...`): at exit,
// writes the Node process's own peak resident set (VmHWM, in kB) to $CNI_SWEEP_BENCH_HWM.
'use strict';
const fs = require('node:fs');

process.on('exit', () => {
  const out = process.env.CNI_SWEEP_BENCH_HWM;
  if (!out) return;
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    fs.writeFileSync(out, m ? m[1] : '');
  } catch {
    /* best effort: the benchmark reports a missing value */
  }
});
