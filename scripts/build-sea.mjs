// Builds dist/cni-sweep-linux-<arch>: a Node single executable application (one file, no Node.js
// needed on the node), from the bundle scripts/build.mjs makes. Uses the Node.js running this
// script as the runtime (it must carry the SEA fuse: official builds and Debian's do) and postject
// to inject the blob: from node_modules when installed, else fetched from the npm registry by npx.
//
//   node scripts/build.mjs && node scripts/build-sea.mjs        # then: dist/cni-sweep-linux-x64 --version
//
// Options: --strip (strip the runtime copy's debug symbols first: a few MiB smaller; binutils'
// strip warns about Debian's node and is therefore not the default).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(repo, 'dist');
const bundle = path.join(dist, 'cni-sweep.bundle.cjs');
const out = path.join(dist, `cni-sweep-${process.platform}-${process.arch}`);
const blob = path.join(dist, 'sea-prep.blob');
const config = path.join(dist, 'sea-config.json');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const POSTJECT = 'postject@1.0.0-alpha.6';

function fail(msg) {
  process.stderr.write(`build-sea: ${msg}\n`);
  process.exit(1);
}

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) fail(`Node ${process.version} has no single executable applications: use Node 20 or later`);
if (!fs.existsSync(bundle)) fail(`${bundle} is missing: run node scripts/build.mjs first`);
const runtime = fs.realpathSync(process.execPath);
if (!fs.readFileSync(runtime).includes(FUSE)) fail(`${runtime} has no SEA fuse (${FUSE}): this Node build cannot make single executables`);

// 1. The preparation blob, with V8's code cache of the bundle (faster start-up). Its main is the
// bundle itself (scripts/build.mjs), without its #! line.
const main = path.join(dist, 'sea-main.cjs');
const text = fs.readFileSync(bundle, 'utf8');
fs.writeFileSync(main, text.startsWith('#!') ? text.slice(text.indexOf('\n') + 1) : text);
fs.writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' });

// 2. A copy of the runtime (optionally stripped of debug symbols).
fs.rmSync(out, { force: true });
fs.copyFileSync(runtime, out);
fs.chmodSync(out, 0o755);
if (process.argv.includes('--strip')) {
  execFileSync('strip', ['--strip-debug', out], { stdio: 'inherit' });
}

// 3. Inject the blob and flip the fuse.
const local = path.join(repo, 'node_modules/.bin/postject');
const postject = fs.existsSync(local) ? [local] : ['npx', '--yes', POSTJECT];
const r = spawnSync(postject[0], [...postject.slice(1), out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: 'inherit' });
if (r.status !== 0) fail(`postject failed (exit ${r.status}${r.error ? `: ${r.error.message}` : ''})`);
fs.rmSync(blob, { force: true });
fs.rmSync(config, { force: true });
fs.rmSync(main, { force: true });

// 4. Check it runs.
const v = spawnSync(out, ['--version'], { encoding: 'utf8' });
if (v.status !== 0) fail(`${out} --version failed: ${v.stderr}`);
process.stdout.write(
  `build-sea: ${path.relative(repo, out)} (${(fs.statSync(out).size / 2 ** 20).toFixed(0)} MiB), cni-sweep ${v.stdout.trim()} on Node ${process.version}\n`,
);
