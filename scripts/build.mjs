// Bundles the CLI into one CommonJS file that bin/cni-sweep loads and any Node 20+ can run with no
// node_modules: every dependency is inside, and only Node's own modules are required.
//
// Start-up is most of what `cni-sweep --help` costs, so:
// - the bundle is small: minified (names kept: errors report their class name), ESM builds of the
//   dependencies preferred (tree-shaken), zod's 40-odd message locales left out (cni-sweep only
//   uses English, which zod loads itself);
// - it comes with V8's code cache for itself: dist/cni-sweep.cjs is a small loader that compiles
//   dist/cni-sweep.bundle.cjs with vm.Script and dist/cni-sweep.cache, made at build time by a
//   warm-up run, so V8 skips parsing and compiling what a run needs. The warm-up is `plan` on a
//   throwaway Flannel node made of fixtures/flannel, with stand-ins for ip, iptables-save and nft
//   that print the fixtures: it compiles detection, the parsers and every phase's planning, not
//   only the option parsing. A Node whose V8 differs from the one that built it rejects the cache
//   and compiles as usual: same behaviour, no speed-up. Nothing is written at run time.
// - the bundle and the cache are plain files beside the loader: reading them is all it costs
//   (before, both sat gzipped and base64-encoded in a comment at the end of the loader, and
//   unpacking them cost ~40 ms of CPU on every command). The bundle alone runs too (`node
//   cni-sweep.bundle.cjs`): the Ansible role copies that one file to the nodes;
// - `--version`, `-V`, `version`, `--help`, `-h`, `help` and a bare `cni-sweep` are answered by the
//   loader from what the bundle printed for them at build time, without reading it; the help only
//   when stdout is not a terminal (on one, commander wraps it to the terminal's width);
// - the built-in profiles and distributions are parsed here and embedded as JSON (below).
// Measured against the packed loader with parsing at start-up, by CPU time (user+sys, medians of
// 21 alternating runs) on this 2-core machine under heavy load (load average 8-12; `node -e 0`:
// 170 ms): --version 185 -> 168 ms; `profiles` 478 -> 377 ms; `plan` on a node with 250 pods and
// 5000 foreign rules 1.70 -> 1.58 s (its child processes included). By instructions executed
// (callgrind, which load does not move): `profiles` 840 M -> 725 M, `plan` (cni-sweep's own
// process) 2177 M -> 2010 M, `node -e 0` 502 M.
//
//   node scripts/build.mjs                 build dist/cni-sweep.{cjs,bundle.cjs,cache} and dist/cni-sweep.1
//   node scripts/build.mjs --analyze       also print the largest inputs and write dist/cni-sweep.meta.json
//   node scripts/build.mjs --no-minify     readable bundle without the code cache, for debugging
//   node scripts/build.mjs --no-code-cache no code cache
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const analyze = process.argv.includes('--analyze');
const minify = !process.argv.includes('--no-minify');
const codeCache = minify && !process.argv.includes('--no-code-cache');
const loaderFile = path.join(repo, 'dist/cni-sweep.cjs');
const bundleFile = path.join(repo, 'dist/cni-sweep.bundle.cjs');
const cacheFile = path.join(repo, 'dist/cni-sweep.cache');

/** zod's `locales` namespace re-exports every language; keep only English (what zod configures by default). */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
      return { path: path.join(path.dirname(args.importer), args.path), namespace: 'zod-locales' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};\n`,
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

// The built-in profiles and distributions, parsed here with their schemas (defaults filled) and
// embedded as JSON: the CLI does not parse this fixed data at every start. A profile that does
// not pass its schema fails the build. (test/unit/profiles.test.ts: JSON keeps all of it.)
const parseBuiltIn = await build({
  absWorkingDir: repo,
  stdin: {
    contents: [
      "import { loadProfiles } from './src/profiles/index.ts';",
      "import { loadDistros } from './src/distros/index.ts';",
      "import { distroReads } from './src/distros/node.ts';",
      "import { earlyReads } from './src/inspect.ts';",
      'const profiles = loadProfiles(), distros = loadDistros();',
      'process.stdout.write(JSON.stringify({ profiles, distros, early: earlyReads(profiles, distroReads(distros)) }));',
    ].join('\n'),
    resolveDir: repo,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  write: false,
  logLevel: 'warning',
});
const builtIn = JSON.parse(execFileSync(process.execPath, ['-'], { input: parseBuiltIn.outputFiles[0].text, encoding: 'utf8' }));

const result = await build({
  absWorkingDir: repo,
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: 'dist/cni-sweep.bundle.cjs',
  write: false,
  // ESM builds tree-shake: for packages without an exports map, prefer "module" over the CommonJS "main".
  mainFields: ['module', 'main'],
  minify,
  keepNames: true,
  define: {
    __CNI_SWEEP_VERSION__: JSON.stringify(pkg.version),
    __CNI_SWEEP_BUILT_IN_PROFILES__: JSON.stringify(JSON.stringify(builtIn.profiles)),
    __CNI_SWEEP_BUILT_IN_DISTROS__: JSON.stringify(JSON.stringify(builtIn.distros)),
  },
  legalComments: 'none',
  plugins: [zodEnglishOnly],
  metafile: true,
  logLevel: 'warning',
});

const out = result.metafile.outputs['dist/cni-sweep.bundle.cjs'];
if (analyze) {
  fs.writeFileSync(path.join(repo, 'dist/cni-sweep.meta.json'), JSON.stringify(result.metafile));
  const byPackage = new Map();
  for (const [file, info] of Object.entries(out.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    const key = m ? m[1] : file.startsWith('zod-locales:') ? 'zod (locales stub)' : 'src';
    byPackage.set(key, (byPackage.get(key) ?? 0) + info.bytesInOutput);
  }
  const rows = [...byPackage].sort((a, b) => b[1] - a[1]);
  process.stdout.write(`dist/cni-sweep.bundle.cjs: ${(out.bytes / 1024).toFixed(0)} KiB\n`);
  for (const [k, v] of rows.slice(0, 20)) process.stdout.write(`  ${(v / 1024).toFixed(1).padStart(7)} KiB  ${k}\n`);
  process.stdout.write('(details: dist/cni-sweep.meta.json, e.g. on https://esbuild.github.io/analyze/)\n');
}

/**
 * A dirty Flannel node for the warm-up, made of fixtures/flannel: its files under <dir>/root, and
 * <dir>/bin holding the only commands on the warm-up's PATH, which print the fixtures (every other
 * command is missing, and the plan says so).
 */
function fixtureNode(dir) {
  const fx = path.join(repo, 'fixtures/flannel');
  const root = path.join(dir, 'root');
  const put = (rel, from) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.copyFileSync(path.join(fx, from), path.join(root, rel));
  };
  put('etc/cni/net.d/10-flannel.conflist', '10-flannel.conflist');
  put('run/flannel/subnet.env', 'subnet.env');
  for (const f of fs.readdirSync(path.join(fx, 'ipam-cbr0'))) put(`var/lib/cni/networks/cbr0/${f}`, `ipam-cbr0/${f}`);
  for (const f of fs.readdirSync(path.join(fx, 'results'))) put(`var/lib/cni/results/${f}`, `results/${f}`);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const sq = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cat = (f) => `/bin/cat ${sq(path.join(fx, f))}`;
  const stand = {
    ip: `case "$*" in\n  '-j -d link show') ${cat('ip-link.json')} ;;\n  '-j -4 route show table main') ${cat('ip-route.json')} ;;\n  *) echo '[]' ;;\nesac`,
    'iptables-nft-save': cat('iptables-save.v4.txt'),
    'ip6tables-nft-save': cat('iptables-save.v6.txt'),
    nft: `echo 'Error: No such file or directory' >&2; exit 1`,
  };
  for (const [name, body] of Object.entries(stand)) fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return { root, path: bin };
}

const bundle = result.outputFiles.find((f) => f.path === bundleFile)?.text;
if (!bundle) throw new Error('build: esbuild produced no dist/cni-sweep.bundle.cjs');
// vm.Script has no loader for import(); esbuild turns imports of bundled modules into require().
// (Only checked when minified: the comments left in otherwise mention import().)
if (minify && /\bimport\(/.test(bundle)) throw new Error('build: the bundle calls import(): make it a static import or a require()');
// The build's id ties the three files together: the loader runs only the bundle it was built
// with, and uses only the code cache made for it.
const id = createHash('sha256').update(bundle).digest('hex').slice(0, 16);
const head = `#!/usr/bin/env node\n// cni-sweep ${pkg.version} build ${id}: the whole CLI, runnable alone (node cni-sweep.bundle.cjs plan).\n`;
const cacheTag = `\ncni-sweep build ${id}\n`;
fs.mkdirSync(path.dirname(bundleFile), { recursive: true });
fs.writeFileSync(bundleFile, head + bundle, { mode: 0o755 });
fs.rmSync(cacheFile, { force: true });
// The source the loader compiles, from `text` (the bundle file): a CommonJS module's function,
// without the #! line. The warm-up compiles the same expression, so that V8 takes the cache.
// V8 takes a code cache only under the flags it was made with: the bundle sets its heap flags
// (src/util/heap.ts) as it starts, so the warm-up and the loader set them before compiling it.
const heapFlags = `for (const f of ${fs.readFileSync(path.join(repo, 'src/util/heap-flags.json'), 'utf8').trim()}) require('node:v8').setFlagsFromString(f);`;
const wrap = "`(function (exports, require, module, __filename, __dirname) {${text.slice(text.indexOf('\\n') + 1)}\\n})`";

if (codeCache) {
  // Warm-up in a child: compile, run `plan` on the fixture node (it only reads), then save the
  // cache, which now holds every function that run compiled.
  const tmp = fs.mkdtempSync(path.join(path.dirname(bundleFile), '.code-cache-'));
  try {
    const warmEnv = fixtureNode(tmp);
    const warm = [
      "const vm = require('node:vm'), fs = require('node:fs'), path = require('node:path');",
      `const file = ${JSON.stringify(bundleFile)}, out = ${JSON.stringify(path.join(tmp, 'cache.bin'))};`,
      "const text = fs.readFileSync(file, 'utf8');",
      heapFlags,
      `const s = new vm.Script(${wrap}, { filename: file });`,
      "process.on('exit', () => fs.writeFileSync(out, s.createCachedData()));",
      `process.argv = [process.argv[0], file, 'plan', '--root', ${JSON.stringify(warmEnv.root)}, '--node', 'warm-up'];`,
      'const m = { exports: {} };',
      's.runInThisContext()(m.exports, require, m, file, path.dirname(file));',
    ].join('\n');
    execFileSync(process.execPath, ['-e', warm], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: warmEnv.path, NO_COLOR: '1', LC_ALL: 'C' },
    });
    // The tag at the end, where it leaves V8's data where readFileSync put it (aligned).
    fs.writeFileSync(cacheFile, Buffer.concat([fs.readFileSync(path.join(tmp, 'cache.bin')), Buffer.from(cacheTag, 'latin1')]));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// The answers that need no bundle: the version and the help, as the bundle prints them to a
// pipe (a terminal wraps the help to its width: there the bundle prints it).
const fast = {};
for (const args of [[], ['--version'], ['-V'], ['version'], ['--help'], ['-h'], ['help']]) {
  const r = spawnSync(process.execPath, [bundleFile, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, LC_ALL: 'C' } });
  if (r.status === null || r.stderr) throw new Error(`build: cni-sweep ${args.join(' ')} printed on stderr or died: ${r.stderr}`);
  fast[args.join(' ')] = { out: r.stdout, code: r.status, help: !args.some((a) => /version|^-V$/.test(a)) };
}
// The first listings of a run or a plan, started by the loader before it compiles the bundle
// (src/host/early.ts): a few kB of code of their own, run from the loader.
const early = await build({
  absWorkingDir: repo,
  stdin: {
    contents: `import { startEarly } from './src/host/early.ts';\nstartEarly(${JSON.stringify(builtIn.early)});\n`,
    resolveDir: repo,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'iife',
  minify: true,
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
});
const earlyCode = early.outputFiles[0].text.trim();

const loader = [
  '#!/usr/bin/env node',
  `// cni-sweep ${pkg.version} build ${id}: runs cni-sweep.bundle.cjs (next to this file) with V8's code cache in cni-sweep.cache, made at build time (Node ${process.version}); other Node versions compile it as usual.`,
  "'use strict';",
  `const fast = ${JSON.stringify(fast)}[process.argv.slice(2).join(' ')];`,
  "if (fast && process.argv.length <= 3 && !(fast.help && require('node:tty').isatty(1))) {",
  '  process.exitCode = fast.code;',
  "  const fs = require('node:fs');",
  "  const out = Buffer.from(fast.out, 'utf8');",
  '  let n = 0;',
  '  try {',
  '    while (n < out.length) n += fs.writeSync(1, out, n);',
  '  } catch (e) {',
  "    if (e.code === 'EAGAIN') process.stdout.write(out.subarray(n));",
  '  }',
  '} else {',
  "  const fs = require('node:fs'), path = require('node:path');",
  `  if (process.argv[2] === 'run' || process.argv[2] === 'plan') ${earlyCode}`,
  "  const file = path.join(__dirname, 'cni-sweep.bundle.cjs');",
  "  let text = '', cache;",
  '  try {',
  "    text = fs.readFileSync(file, 'utf8');",
  "    cache = fs.readFileSync(path.join(__dirname, 'cni-sweep.cache'));",
  '  } catch {}',
  `  if (!text.startsWith(${JSON.stringify(head)})) {`,
  '    process.stderr.write(`cni-sweep: error: ${file} is missing or not the one built with ${__filename}: reinstall cni-sweep\\n`);',
  '    process.exitCode = 1;',
  '  } else {',
  `    const tag = ${JSON.stringify(cacheTag)};`,
  "    const cachedData = cache && cache.toString('latin1', cache.length - tag.length) === tag ? cache.subarray(0, cache.length - tag.length) : undefined;",
  `    ${heapFlags}`,
  `    new (require('node:vm').Script)(${wrap}, { filename: file, cachedData }).runInThisContext()(exports, require, module, file, __dirname);`,
  '  }',
  '}',
  '',
].join('\n');
fs.writeFileSync(loaderFile, loader, { mode: 0o755 });

// The man page, made by the bundle from the same program --help is made from; shipped in the package.
fs.writeFileSync(path.join(repo, 'dist/cni-sweep.1'), execFileSync(process.execPath, [loaderFile, 'man'], { encoding: 'utf8' }));
