// Profiles written in files: `--profile FILE` and <root>/etc/cni-sweep/profiles.d/*.json|*.yaml|*.yml,
// in the built-in profiles' schema and through the same validation. A file that cannot be read, is
// not a profile, or would replace another profile stops the command before it reads the node, with
// one line naming the file and the field.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { inRoot } from '../host/in-root.js';
import { lazyYaml } from '../util/lazy.js';
import { builtInProfiles, useFileProfiles } from './index.js';
import { ProfileSchema, type Profile } from './schema.js';

/** Where a node keeps its own profiles, under --root. */
export const PROFILES_DIR = '/etc/cni-sweep/profiles.d';
/** A profile is a few kilobytes: anything much bigger is a mistake, or an attempt to exhaust memory. */
export const MAX_PROFILE_BYTES = 256 * 1024;
/** YAML aliases past this many are a "billion laughs" document, not a profile. */
const MAX_ALIASES = 100;
const EXTENSIONS = ['.json', '.yaml', '.yml'];

export const BUILT_IN = 'built-in';

export interface ProfileSet {
  /** The built-in profiles, then those of profiles.d (by file name), then those of --profile (in order). */
  all: Profile[];
  /** Each profile's source, by name: "built-in" or its file. */
  sources: Map<string, string>;
}

const bad = (shown: string, why: string) => new UsageError(`profile ${shown}: ${why}`);
const firstLine = (s: string) => (s.split('\n')[0] ?? '').replace('; please use YAML.parseAllDocuments()', '').replace(/:$/, '').trim();

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return 'no such file';
  if (err?.code === 'EACCES' || err?.code === 'EPERM') return 'permission denied';
  if (err?.code === 'ELOOP') return 'too many levels of symbolic links';
  return err?.code ?? firstLine(String(err?.message ?? e));
}

/**
 * The text of a profile file. It must be a regular file (checked before opening, so a FIFO or a device
 * is never opened, and again on the open file), at most MAX_PROFILE_BYTES, and UTF-8.
 */
function readText(real: string, shown: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(real);
  } catch (e) {
    throw bad(shown, `cannot read it: ${errText(e)}`);
  }
  if (!st.isFile()) throw bad(shown, `cannot read it: ${kindOf(st)}, not a regular file`);
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (e) {
    throw bad(shown, `cannot read it: ${errText(e)}`);
  }
  try {
    const open = fs.fstatSync(fd);
    if (!open.isFile()) throw bad(shown, `cannot read it: ${kindOf(open)}, not a regular file`);
    const buf = Buffer.alloc(MAX_PROFILE_BYTES + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = fs.readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_PROFILE_BYTES) throw bad(shown, `too big: a profile file is at most ${MAX_PROFILE_BYTES} bytes`);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n));
    } catch {
      throw bad(shown, 'not UTF-8 text');
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw bad(shown, `cannot read it: ${errText(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** JSON for *.json, YAML (a superset of JSON) for anything else. Duplicate keys, tags YAML does not know and more documents than one are errors. */
function parseText(text: string, shown: string): unknown {
  if (shown.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw bad(shown, `not valid JSON: ${firstLine((e as Error).message)}`);
    }
  }
  try {
    const doc = lazyYaml().parseDocument(text, { uniqueKeys: true, strict: true });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) throw bad(shown, `not valid YAML: ${firstLine(problem.message)}`);
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // toJS: too many aliases; the parser: a document nested deeper than the stack.
    throw bad(shown, `not valid YAML: ${firstLine((e as Error).message)}`);
  }
}

/** One profile file, validated as the built-in profiles are. */
export function readProfileFile(real: string, shown: string): Profile {
  const data = parseText(readText(real, shown), shown);
  const parsed = ProfileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!; // a failed parse has at least one issue
    throw bad(shown, `${issue.path.join('.') || '(root)'}: ${firstLine(issue.message)}`);
  }
  return parsed.data;
}

/** The profile files of <root>/etc/cni-sweep/profiles.d, by name; a symlink among them must stay inside the directory. */
function dirFiles(root: string): Array<{ real: string; shown: string }> {
  // Links are followed as the node follows them, inside the root (host/in-root.ts); under / that is
  // the kernel's own lookup.
  const resolve = (nodePath: string) => (root === '/' ? fs.realpathSync(nodePath) : inRoot(root, nodePath, true));
  const dir = inRoot(root, PROFILES_DIR, true);
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(
      `profile directory ${dir}: cannot read it: ${(e as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'not a directory' : errText(e)}`,
    );
  }
  const out: Array<{ real: string; shown: string }> = [];
  const names = entries
    .filter((e) => !e.name.startsWith('.') && EXTENSIONS.includes(path.extname(e.name)))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of names) {
    const shown = path.join(dir, e.name);
    if (e.isSymbolicLink()) {
      let target: string;
      let inside: string;
      try {
        target = resolve(`${PROFILES_DIR}/${e.name}`);
        inside = resolve(PROFILES_DIR);
      } catch (err) {
        throw bad(shown, `cannot read it: ${errText(err)}`);
      }
      if (!target.startsWith(inside + '/')) throw bad(shown, `a symlink to ${target}, outside ${dir}: profiles.d holds its files itself`);
      out.push({ real: target, shown });
    } else out.push({ real: shown, shown });
  }
  return out;
}

/**
 * The built-in profiles and those of the files, checked together: a file cannot replace a built-in
 * profile or another file's (a profile of the same name would change what a run removes, silently),
 * and `includes` must name a known profile. The phases know the file profiles from then on.
 */
export function loadProfileSet(root: string, files: string[]): ProfileSet {
  const builtIn = builtInProfiles();
  const sources = new Map(builtIn.map((p) => [p.name, BUILT_IN]));
  const read = new Set<string>();
  const loaded: Profile[] = [];
  const given = files.map((f) => {
    if (f.trim() === '') throw new UsageError('--profile: empty value', 'give --profile a file, or leave the option out');
    return { real: path.resolve(f), shown: f };
  });
  for (const { real, shown } of [...dirFiles(root), ...given]) {
    // The same file twice (named with --profile and also in profiles.d) is one profile.
    let same: string;
    try {
      same = fs.realpathSync(real);
    } catch (e) {
      throw bad(shown, `cannot read it: ${errText(e)}`);
    }
    if (read.has(same)) continue;
    read.add(same);
    const p = readProfileFile(real, shown);
    const before = sources.get(p.name);
    if (before === BUILT_IN)
      throw bad(shown, `name: "${p.name}" is a built-in profile; a file cannot replace it (give this profile a name of its own)`);
    if (before !== undefined)
      throw bad(shown, `name: "${p.name}" is also the name of the profile in ${before}; profile names must be unique`);
    sources.set(p.name, shown);
    loaded.push(p);
  }
  const all = [...builtIn, ...loaded];
  for (const p of loaded) {
    p.includes.forEach((n, i) => {
      if (!sources.has(n)) throw bad(sources.get(p.name)!, `includes.${i}: no profile is named "${n}"`);
    });
  }
  useFileProfiles(loaded);
  return { all, sources };
}
