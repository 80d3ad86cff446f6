// Process entry: wires the real host, terminal and signals into the CLI.
import readline from 'node:readline';
import { main, type Io } from './cli.js';
import { RealHost } from './host/real.js';
import { PlainReporter } from './report/plain.js';
import type { Reporter } from './events.js';

// A terminal that reports no width (serial consoles, some CI ptys) sends ora into an endless
// redraw: spinners and colour only where the width is known.
const color = process.stderr.isTTY && (process.stderr.columns ?? 0) > 0 && !process.env.NO_COLOR && !process.argv.includes('--no-color');

const io: Io = {
  stdout: process.stdout,
  stderr: process.stderr,
  stdinIsTty: Boolean(process.stdin.isTTY),
  stderrIsTty: Boolean(process.stderr.isTTY),
  env: process.env,
  makeHost: (root) => new RealHost(root),
  ask: (q) =>
    new Promise((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
      rl.question(q, (a) => {
        rl.close();
        resolve(a);
      });
    }),
  onSignals: (handler) => {
    // The step in flight finishes; the runner then restarts what it stopped and reports.
    const h = (sig: NodeJS.Signals) => handler(sig);
    process.on('SIGINT', h);
    process.on('SIGTERM', h);
    return () => {
      process.off('SIGINT', h);
      process.off('SIGTERM', h);
    };
  },
  makeReporter: ({ verbose }): Reporter => {
    if (!color) return new PlainReporter(process.stderr, verbose);
    // Loaded only on a terminal: chalk and ora cost start-up time that pipes and Ansible never need.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { TtyReporter } = require('./report/tty.js') as typeof import('./report/tty.js');
    return new TtyReporter(verbose);
  },
};

// `cni-sweep plan | head`: the reader went away; that is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`cni-sweep: error: ${(err as Error)?.message ?? err}\n`);
    process.exitCode = 1;
  },
);
