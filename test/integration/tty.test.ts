// On a terminal: the confirmation prompt (what will be removed, by kind; [y/N]) and one spinner per
// phase. util-linux `script` gives the CLI a real pty; off a terminal there are no escape codes.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FlannelNode } from '../helpers/flannel-node.js';
import { cliArgv, cliEnv, nodeArgs, readCalls, resetCalls, runCli, snapshot, TestNodes } from '../helpers/harness.js';
import { wrapper } from '../helpers/faults.js';
import { shellQuote } from '../../src/util/shell.js';

const nodes = new TestNodes({ pods: 1 });
afterEach(nodes.cleanUp);

/** Runs cni-sweep on a pty of the given width, typing `answer` after a moment. */
function onTerminal(node: FlannelNode, args: string[], answer: string, cols: number) {
  const cmd = `stty cols ${cols} rows 40; ${['nsenter', ...cliArgv(node, args)].map(shellQuote).join(' ')}`;
  const typed = `sleep 1; printf '%s\\n' ${shellQuote(answer)}`;
  const r = spawnSync('bash', ['-c', `(${typed}) | script -qec ${shellQuote(cmd)} /dev/null`], {
    env: { ...cliEnv(node), NO_COLOR: '', TERM: 'xterm' },
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 8 * 1024 * 1024,
  });
  // The pty carries the exit code through `script -e`; strip escapes to read the screen text.
  return { code: r.status, screen: r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, ''), raw: r.stdout };
}

describe('on a terminal', () => {
  it('run without --yes shows what it will remove by kind, asks once, and "n" changes nothing (exit 3)', () => {
    const node = nodes.make('tty-no');
    const before = snapshot(node);
    const r = onTerminal(node, ['run', ...nodeArgs(node)], 'n', 120);
    expect(r.code).toBe(3);
    expect(r.screen).toContain('cni-sweep will change node node-1. It will remove:');
    expect(r.screen).toMatch(/^ {2}- interface \(3\): veth[0-9a-f]{8}, cni0, flannel\.1$/m);
    expect(r.screen).toMatch(/^ {2}- CNI config \(1\): \/etc\/cni\/net\.d\/10-flannel\.conflist$/m);
    expect(r.screen).toMatch(/^ {2}- iptables-nft: \d+ chains \(.*FLANNEL-FWD.*\) and \d+ rules in built-in or other chains$/m);
    expect(r.screen.match(/Proceed\? \[y\/N\]/g)).toHaveLength(1);
    expect(r.screen).toContain('cni-sweep: not confirmed: nothing was changed');
    expect(snapshot(node)).toEqual(before);
  });

  it('a terminal whose input ends at the prompt is a no: nothing changed, exit 3', async () => {
    const node = nodes.make('tty-eof');
    const before = snapshot(node);
    // The input ends once the prompt is on the screen: an end of input typed before the prompt
    // switched the terminal to raw mode would be lost, and the prompt would wait for ever.
    const cmd = `stty cols 120 rows 40; ${['nsenter', ...cliArgv(node, ['run', ...nodeArgs(node)])].map(shellQuote).join(' ')}`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...cliEnv(node), NO_COLOR: '', TERM: 'xterm' }, stdio: 'pipe' });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 1500 && !screen.includes('[y/N]'); i++) await new Promise((r) => setTimeout(r, 20));
    child.stdin.end();
    expect(await exited).toBe(3);
    expect(screen.replace(/\r/g, '')).toContain('cni-sweep: not confirmed: nothing was changed');
    expect(snapshot(node)).toEqual(before);
    expect(fs.existsSync(`${node.root}/run/cni-sweep.lock`)).toBe(false);
  });

  it('"y" runs it, with a spinner that ends in ✔ per phase', () => {
    const node = nodes.make('tty-yes');
    const r = onTerminal(node, ['run', ...nodeArgs(node)], 'y', 120);
    expect(r.code).toBe(0);
    for (const phase of ['backup', 'drain', 'interfaces', 'firewall', 'netns'])
      expect(r.screen).toMatch(new RegExp(`✔ ${phase} ok, \\d+ ms`));
    expect(r.raw).toContain('\x1b['); // colour and cursor control on a terminal
    expect(snapshot(node).links.join('\n')).not.toMatch(/^cni0 /m);
    // The end says what went, by kind, where the backup is and that the node is still cordoned.
    expect(r.screen).toMatch(
      /^cni-sweep: node node-1: removed flannel state in \d+(\.\d)? s: 1 CNI config, \d+ state paths?, \d+ interfaces/m,
    );
    expect(r.screen).toMatch(/^cni-sweep: backup: \S+; to put the files and firewall rules back: cni-sweep restore \S+$/m);
    expect(r.screen).toContain('cni-sweep: node still cordoned: `kubectl uncordon node-1` once the new CNI runs');
    expect(r.screen).not.toContain('command(s)');
  });

  it('a terminal that reports no width gets plain lines, not a runaway spinner', () => {
    const node = nodes.make('tty-nowidth');
    const r = onTerminal(node, ['run', '--yes', ...nodeArgs(node)], '', 0);
    expect(r.code).toBe(0);
    expect(r.raw.length).toBeLessThan(20_000);
    expect(r.screen).toMatch(/^cni-sweep: interfaces ok, \d+ ms$/m);
  });

  it('off a terminal: no escape codes on stdout or stderr', () => {
    const node = nodes.make('notty');
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)], { env: { NO_COLOR: '' } });
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).not.toContain('\x1b');
    // The lines a terminal shows, not every command line in full (a tar of every path, kilobytes at 250 pods).
    expect(r.stderr).toMatch(/^cni-sweep: backup ok, \d+ ms\n(.*\n)*cni-sweep: interfaces ok, \d+ ms$/m);
    expect(r.stderr).not.toMatch(/ran: |tar -C/);
    expect(fs.existsSync(node.root)).toBe(true);
  });
});

describe('Ctrl-C on a terminal', () => {
  it.each([
    ['with --yes', ['--yes']],
    ['after answering y at the prompt', []],
  ])(
    '^C typed mid-run (%s) stops it like SIGINT: the step in flight finishes, kubelet and the runtime are started again, exit 130',
    async (_, yes) => {
      const node = nodes.make('tty-ctrlc');
      const dir = path.join(path.dirname(node.root), 'slow');
      const marker = path.join(dir, 'batch-started');
      // Every `ip -batch` is held for a while, so the ^C arrives while the interfaces batch is in flight.
      const slow = wrapper(dir, 'ip', `if [ "$1" = -batch ]; then touch ${marker}; sleep 1.5; fi`);
      const cmd = `stty cols 120 rows 40; ${['nsenter', ...cliArgv(node, ['run', ...yes, '--json', ...nodeArgs(node)])].map(shellQuote).join(' ')}`;
      resetCalls(node);
      const child = spawn('script', ['-qec', cmd, '/dev/null'], {
        env: { ...cliEnv(node, { pathBefore: [slow] }), NO_COLOR: '', TERM: 'xterm' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      child.stdout.on('data', (d: Buffer) => {
        screen += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      if (!yes.length) {
        for (let i = 0; i < 500 && !screen.includes('[y/N]'); i++) await new Promise((r) => setTimeout(r, 20));
        child.stdin.write('y\r');
      }
      for (let i = 0; i < 500 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 20));
      expect(fs.existsSync(marker)).toBe(true);
      child.stdin.write('\x03'); // what the Ctrl-C key sends
      const code = await Promise.race([
        exited,
        new Promise((r) =>
          setTimeout(() => {
            r('still running');
          }, 30_000),
        ),
      ]);
      child.stdin.end();
      expect(code).toBe(130);
      const text = screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
      expect(text).toMatch(/"interrupted": "SIGINT"/);
      const calls = readCalls(node);
      expect(calls.filter((c) => / (stop|start) /.test(c))).toEqual([
        'systemctl stop kubelet.service',
        'systemctl stop containerd.service',
        'systemctl start containerd.service',
        'systemctl start kubelet.service',
      ]);
      // The batch was not killed half way, and nothing after it ran: the routes are still there.
      expect(snapshot(node).links.filter((l) => /^(cni0|flannel\.1) /.test(l))).toEqual([]);
      expect(snapshot(node).routes4).toContain('10.244.2.0/24 via 192.168.1.12 dev eth0');
    },
    60_000,
  );
});
