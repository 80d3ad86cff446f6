// On a terminal: the confirmation prompt (what will be removed, by kind; [y/N]) and one spinner per
// phase. util-linux `script` gives the CLI a real pty; off a terminal there are no escape codes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createFlannelNode, destroyFlannelNode, type FlannelNode } from '../helpers/flannel-node.js';
import { cliArgv, cliEnv, nodeArgs, runCli, scratch, snapshot } from '../helpers/harness.js';
import { shellQuote } from '../../src/util/shell.js';

const made: FlannelNode[] = [];
afterEach(() => {
  while (made.length) destroyFlannelNode(made.pop()!);
});

/** Runs cni-sweep on a pty of the given width, typing `answer` after a moment (null: the input ends instead). */
function onTerminal(node: FlannelNode, args: string[], answer: string | null, cols: number) {
  const cmd = `stty cols ${cols} rows 40; ${['nsenter', ...cliArgv(node, args)].map(shellQuote).join(' ')}`;
  const typed = answer === null ? 'sleep 1' : `sleep 1; printf '%s\\n' ${shellQuote(answer)}`;
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
    const node = createFlannelNode({ ...scratch('tty-no'), pods: 1 });
    made.push(node);
    const before = snapshot(node);
    const r = onTerminal(node, ['run', ...nodeArgs(node)], 'n', 120);
    expect(r.code).toBe(3);
    expect(r.screen).toContain('cni-sweep will change node node-1. It will remove:');
    expect(r.screen).toMatch(/^ {2}- interface \(3\): veth[0-9a-f]{8}, cni0, flannel\.1$/m);
    expect(r.screen).toMatch(/^ {2}- CNI config \(1\): \/etc\/cni\/net\.d\/10-flannel\.conflist$/m);
    expect(r.screen).toMatch(/^ {2}- iptables-nft: \d+ chain\(s\) \(.*FLANNEL-FWD.*\) and \d+ rule\(s\) in built-in or other chains$/m);
    expect(r.screen.match(/Proceed\? \[y\/N\]/g)).toHaveLength(1);
    expect(r.screen).toContain('cni-sweep: error: not confirmed: nothing was changed');
    expect(snapshot(node)).toEqual(before);
  });

  it('a terminal whose input ends at the prompt is a no: nothing changed, exit 3', () => {
    const node = createFlannelNode({ ...scratch('tty-eof'), pods: 1 });
    made.push(node);
    const before = snapshot(node);
    const r = onTerminal(node, ['run', ...nodeArgs(node)], null, 120);
    expect(r.code).toBe(3);
    expect(r.screen).toContain('cni-sweep: error: not confirmed: nothing was changed');
    expect(snapshot(node)).toEqual(before);
    expect(fs.existsSync(`${node.root}/run/cni-sweep.lock`)).toBe(false);
  });

  it('"y" runs it, with a spinner that ends in ✔ per phase', () => {
    const node = createFlannelNode({ ...scratch('tty-yes'), pods: 1 });
    made.push(node);
    const r = onTerminal(node, ['run', ...nodeArgs(node)], 'y', 120);
    expect(r.code).toBe(0);
    for (const phase of ['backup', 'drain', 'interfaces', 'firewall', 'netns'])
      expect(r.screen).toMatch(new RegExp(`✔ ${phase} ok, \\d+ ms`));
    expect(r.raw).toContain('\x1b['); // colour and cursor control on a terminal
    expect(snapshot(node).links.join('\n')).not.toMatch(/^cni0 /m);
  });

  it('a terminal that reports no width gets plain lines, not a runaway spinner', () => {
    const node = createFlannelNode({ ...scratch('tty-nowidth'), pods: 1 });
    made.push(node);
    const r = onTerminal(node, ['run', '--yes', ...nodeArgs(node)], '', 0);
    expect(r.code).toBe(0);
    expect(r.raw.length).toBeLessThan(20_000);
    expect(r.screen).toContain('cni-sweep: [interfaces] ok (');
  });

  it('off a terminal: no escape codes on stdout or stderr', () => {
    const node = createFlannelNode({ ...scratch('notty'), pods: 1 });
    made.push(node);
    const r = runCli(node, ['run', '--yes', ...nodeArgs(node)], { env: { NO_COLOR: '' } });
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).not.toContain('\x1b');
    expect(fs.existsSync(node.root)).toBe(true);
  });
});
