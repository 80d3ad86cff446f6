// Process entry: wires the real host, terminal and signals into the CLI.
import './util/heap.js'; // first: it sets how the heap grows before the other modules allocate
import { main, type Io } from './cli.js';
import { RealHost } from './host/real.js';
import { PlainReporter } from './report/plain.js';
import type { Reporter } from './events.js';
import { lazyReadline } from './util/lazy.js';
import { mark } from './util/trace.js';

// A terminal that reports no width (serial consoles, some CI ptys) sends ora into an endless
// redraw: spinners and colour only where the width is known.
const color = process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && !process.env.NO_COLOR && !process.argv.includes('--no-color');

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** While a run can be interrupted: stops it when stdout or stderr can no longer be written. */
let outputLost: (() => void) | null = null;

const io: Io = {
  stdout: process.stdout,
  stderr: process.stderr,
  stdinIsTty: Boolean(process.stdin.isTTY),
  stderrIsTty: Boolean(process.stderr.isTTY),
  env: process.env,
  makeHost: (root) => new RealHost(root),
  ask: (q) =>
    new Promise((resolve) => {
      const rl = lazyReadline().createInterface({ input: process.stdin, output: process.stderr });
      // A terminal that goes away ends stdin: no answer is a no, not a promise left pending.
      rl.on('close', () => {
        resolve('');
      });
      rl.question(q, (a) => {
        resolve(a);
        rl.close();
      });
    }),
  onSignals: (handler) => {
    // The step in flight finishes; the runner then restarts what it stopped and reports. A hang-up
    // (the terminal or the SSH session of an Ansible run went away) stops a run the same way, and
    // so does losing the output, which is how a session without a terminal ends.
    const h = (sig: NodeJS.Signals) => {
      handler(sig);
    };
    for (const sig of STOP_SIGNALS) process.on(sig, h);
    outputLost = () => {
      handler('SIGPIPE');
    };
    return () => {
      for (const sig of STOP_SIGNALS) process.off(sig, h);
      outputLost = null;
    };
  },
  makeReporter: ({ verbose, quiet }): Reporter => {
    // --quiet has no spinner to show: warnings alone, as lines.
    if (!color || quiet) return new PlainReporter(process.stderr, verbose, quiet);
    // Loaded only on a terminal: chalk and ora cost start-up time that pipes and Ansible never need.
    const { TtyReporter } = require('./report/tty.js') as typeof import('./report/tty.js');
    return new TtyReporter(verbose);
  },
};

// `cni-sweep plan | head`: the reader went away; that is not an error worth a stack trace. During
// a run it must not end the process half way either (kubelet and the runtime may be stopped): the
// run stops as on a signal, and what it would still print goes nowhere.
let gone = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (gone) return;
    if ((e.code === 'EPIPE' || e.code === 'EIO') && outputLost) {
      gone = true;
      outputLost();
      return;
    }
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

mark('main');
process.on('exit', () => {
  mark('exit');
});
main(process.argv.slice(2), io).then(
  (code) => {
    mark('main done');
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cni-sweep: error: ${(err as Error | null)?.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
