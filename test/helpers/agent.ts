// A CNI's node agent as the host sees it: a process named like the agent (`exec -a flanneld`) in the
// test's network namespace, killed with its process group when the test's nodes are cleaned up.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { TestNodes } from './harness.js';

/** Starts a process calling itself `name` with `args` in the namespace `ns` (a bash that waits); resolves to its pid. */
export async function startAgent(nodes: TestNodes, ns: string, name: string, args: string[] = []): Promise<number> {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, 'bash', '-c', `exec -a ${name} bash -c 'sleep 600; :' "$@"`, '-', ...args], {
    stdio: 'ignore',
    detached: true,
  });
  const pid = child.pid!;
  nodes.onCleanup(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  });
  for (let i = 0; i < 250; i++) {
    if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === name) return pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`agent ${name} did not start`);
}
