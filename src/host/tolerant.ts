// Without root, a plan still reads what it can: files it may not read are recorded as gaps
// (and reported on stderr and in the plan header) instead of failing the plan.
import type { Gaps } from '../util/gaps.js';
import type { Host } from './host.js';

const DENIED = new Set(['EACCES', 'EPERM']);

export function tolerantReads(host: Host, gaps: Gaps): Host {
  const guard = <T>(what: string, fn: () => Promise<T | null>) =>
    fn().catch((err: unknown) => {
      if (!DENIED.has((err as NodeJS.ErrnoException | null)?.code ?? '')) throw err;
      gaps.add(what, `permission denied`);
      return null;
    });
  return Object.assign(Object.create(host) as Host, {
    readFile: (p: string) => guard(p, () => host.readFile(p)),
    readDir: (p: string) => guard(p, () => host.readDir(p)),
    entryType: (p: string) => guard(p, () => host.entryType(p)),
  });
}
