// CNI config files are the CNI's by content (plugin types), not by file name.
import { underRoot } from '../host/host.js';
import { untrustedNote } from '../inspect.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';

export const cniConfig: Phase = {
  name: 'cni-config',
  summary: 'remove the CNI config files of the CNI (detected by plugin type) from /etc/cni/net.d',
  cleanup: true,
  async plan(ctx) {
    const files: string[] = [];
    // A config whose names fail validation stays: it is the CNI's by its plugin type, but one that
    // names "../../etc" or the uplink was not written by the CNI as released, and whoever wrote it
    // decides what happens to it.
    const notes = ctx.snapshot.facts.flatMap((f) => (f.untrusted ?? []).map(untrustedNote));
    for (const f of ctx.snapshot.facts) {
      for (const p of [...f.configs.map((c) => c.file), ...f.extraFiles]) {
        if ((await ctx.host.entryType(p)) !== null && !files.includes(p)) files.push(p);
      }
    }
    if (!files.length) return nothing(...notes);
    return {
      steps: [
        {
          argv: ['rm', '-f', '--', ...files.map((p) => underRoot(ctx.host.root, p))],
          removes: { kind: 'CNI config', items: files },
          backup: { files },
        },
      ],
      notes,
    };
  },
};
