// The known CNIs, validated once at load so a broken profile is caught as bad input, not mid-run.
import { UsageError } from '../errors.js';
import { calico } from './calico.js';
import { canal } from './canal.js';
import { cilium } from './cilium.js';
import { flannel } from './flannel.js';
import { kubeRouter } from './kube-router.js';
import { multus } from './multus.js';
import { ProfileSchema, type Profile, type ProfileInput } from './schema.js';
import { whereabouts } from './whereabouts.js';

const SOURCES: ProfileInput[] = [flannel, calico, canal, kubeRouter, cilium, multus, whereabouts];

export function loadProfiles(inputs: unknown[] = SOURCES): Profile[] {
  return inputs.map((input, i) => {
    const parsed = ProfileSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!; // a failed parse has at least one issue
      const name = (input as { name?: unknown })?.name;
      throw new UsageError(
        `invalid profile ${typeof name === 'string' ? name : `#${i}`}: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
      );
    }
    return parsed.data;
  });
}

// The build (scripts/build.mjs) parses the built-in profiles and puts the result here as JSON:
// fixed data need not be parsed at every start (zod builds each schema on its first parse, ~30 ms).
declare const __CNI_SWEEP_BUILT_IN_PROFILES__: string | undefined;

let builtIn: Profile[] | undefined;
/** The built-in profiles, validated once (by the build, or here per process when run from the sources). */
export function builtInProfiles(): Profile[] {
  return (builtIn ??=
    typeof __CNI_SWEEP_BUILT_IN_PROFILES__ === 'string' ? (JSON.parse(__CNI_SWEEP_BUILT_IN_PROFILES__) as Profile[]) : loadProfiles());
}

let fromFiles: Profile[] = [];
/**
 * The profiles this command loaded from files (--profile, profiles.d): from then on the phases know
 * them as they know the built-in ones (another CNI's devices, a pod network's config).
 */
export function useFileProfiles(profiles: Profile[]): void {
  fromFiles = profiles;
}

/** Every profile this command knows: the built-in ones and those loaded from files. */
export function knownProfiles(): Profile[] {
  return fromFiles.length ? [...builtInProfiles(), ...fromFiles] : builtInProfiles();
}

export function selectProfiles(all: Profile[], names: string[]): Profile[] {
  return names.map((n) => {
    const p = all.find((x) => x.name === n);
    if (!p) throw new UsageError(`unknown CNI "${n}"`, `known CNIs: ${all.map((x) => x.name).join(', ')}`);
    return p;
  });
}

export type { Profile };
