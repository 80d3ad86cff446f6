// Opt-in: unload the ipip module when tunl0 must go (it is the only way to remove tunl0), and only
// when nothing else uses the module: no other ipip tunnel, no module holding a reference to it.
import { listLinks } from '../inspect.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';
import { plural } from '../util/plural.js';

export const modules: Phase = {
  name: 'modules',
  summary: "unload the CNI's kernel modules (ipip for tunl0) when nothing else uses them (opt-in)",
  cleanup: true,
  optIn: true,
  async plan(ctx) {
    const wanted = ctx.snapshot.facts.flatMap((f) =>
      f.profile.modules.map((m) => ({ module: m, devices: f.profile.interfaces.kernelOwned })),
    );
    if (!wanted.length) return nothing();
    const lsmod = await ctx.host.query(['lsmod']);
    if (!lsmod || lsmod.code !== 0) return nothing('lsmod is not available: modules not checked');
    const loaded = new Map<string, { refs: number; users: string }>();
    for (const line of lsmod.stdout.split('\n').slice(1)) {
      const [name, , refs, users] = line.trim().split(/\s+/);
      if (name) loaded.set(name, { refs: Number(refs), users: users ?? '' });
    }
    const links = await listLinks(ctx.host, ctx.gaps);
    const notes: string[] = [];
    const unload: string[] = [];
    for (const { module, devices } of wanted) {
      const m = loaded.get(module);
      if (!m || !links.some((l) => devices.includes(l.ifname))) continue;
      const others = links.filter((l) => l.linkinfo?.info_kind === module && !devices.includes(l.ifname)).map((l) => l.ifname);
      if (others.length) notes.push(`${module} left loaded: ${others.join(', ')} still use it`);
      else if (m.refs > 0)
        notes.push(`${module} left loaded: in use (${plural(m.refs, 'reference')}${m.users && m.users !== '-' ? ` by ${m.users}` : ''})`);
      else if (!unload.includes(module)) unload.push(module);
    }
    if (!unload.length) return nothing(...notes);
    return { steps: [{ argv: ['modprobe', '-r', ...unload], removes: { kind: 'kernel module', items: unload } }], notes };
  },
};
