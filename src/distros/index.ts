// The known distributions, validated once at load like the profiles.
import { UsageError } from '../errors.js';
import { k3s } from './k3s.js';
import { kubeadm } from './kubeadm.js';
import { microk8s } from './microk8s.js';
import { rke2 } from './rke2.js';
import { DistroSchema, type Distro, type DistroInput } from './schema.js';

const SOURCES: DistroInput[] = [kubeadm, k3s, rke2, microk8s];

export function loadDistros(inputs: unknown[] = SOURCES): Distro[] {
  return inputs.map((input, i) => {
    const parsed = DistroSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const name = (input as { name?: unknown })?.name;
      throw new UsageError(
        `invalid distribution ${typeof name === 'string' ? name : `#${i}`}: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
      );
    }
    return parsed.data;
  });
}

// Parsed by the build like the built-in profiles (src/profiles/index.ts).
declare const __CNI_SWEEP_BUILT_IN_DISTROS__: string | undefined;

/** The built-in distributions, validated by the build, or here when run from the sources. */
export function builtInDistros(): Distro[] {
  return typeof __CNI_SWEEP_BUILT_IN_DISTROS__ === 'string' ? (JSON.parse(__CNI_SWEEP_BUILT_IN_DISTROS__) as Distro[]) : loadDistros();
}

export function selectDistro(all: Distro[], name: string): Distro {
  const d = all.find((x) => x.name === name);
  if (!d) throw new UsageError(`unknown distribution "${name}"`, `known distributions: ${all.map((x) => x.name).join(', ')}`);
  return d;
}

export type { Distro };
