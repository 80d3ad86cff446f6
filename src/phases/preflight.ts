// Says what was found and why; changes nothing. Root and confirmation are checked by the runner.
import type { Phase } from './types.js';
import { networksOf } from '../inspect.js';

export const preflight: Phase = {
  name: 'preflight',
  summary: 'check the node, detect the CNI, record what was found',
  cleanup: false,
  async plan(ctx) {
    const notes: string[] = [];
    for (const f of ctx.snapshot.facts) {
      const cfg = f.configs.map((c) => c.file).join(', ') || 'none';
      const nets = f.podNetworks.map((p) => p.text).join(', ') || 'unknown';
      notes.push(`${f.profile.name}: config ${cfg}; networks ${networksOf(f).join(', ') || 'none'}; pod network ${nets}`);
    }
    const configs = ctx.snapshot.configs;
    if (configs.length > 1) {
      notes.push(`${configs.length} CNI configs present; the runtime uses the first in lexical order: ${configs[0]!.file}`);
    }
    const left = ctx.snapshot.remainingConfigs.map((c) => c.file);
    if (left.length) notes.push(`kept (not owned by ${ctx.profiles.map((p) => p.name).join(', ')}): ${left.join(', ')}`);
    return { steps: [], notes };
  },
};
