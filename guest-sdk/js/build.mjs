#!/usr/bin/env node
// Builds a JavaScript connector into a WebAssembly component for the world
// `connector` of wit/connector.wit, with componentize-js.
//
//   node guest-sdk/js/build.mjs APP_DIR OUT.wasm
//
// APP_DIR holds the app module (app.js by default, set APP_MODULE to change)
// and any other modules it imports with relative paths. The app and this
// SDK (src/) are staged in a temporary directory, so nothing is written into
// the source tree: the app goes to app/, the SDK to sandport-sdk/, and the
// specifier `sandport-sdk` in the app's modules is rewritten to the staged
// SDK (StarlingMonkey, the engine componentize-js embeds, resolves only
// relative paths and the WIT interfaces `sandport:connector/...@0.2.0`). Set
// SANDPORT_JS_BUILD_DIR=DIR to keep the staged sources.
//
// Needs componentize-js: from the directory SANDPORT_JS_TOOLS (which holds
// node_modules/@bytecodealliance/componentize-js) if set, else found the way
// node resolves packages from this file. Install it with
//   npm install --prefix DIR @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0
// (componentize-js imports preview2-shim but declares it only for its own
// development), or pinned: copy tools/package*.json to DIR, `npm ci --prefix DIR`
// and set SANDPORT_JS_TOOLS=DIR.

import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The componentize-js this build is written and tested against. */
const COMPONENTIZE_JS_VERSION = '0.23.0';
const PACKAGE = '@bytecodealliance/componentize-js';
const SHIM = '@bytecodealliance/preview2-shim@0.25.0';
const SDK_SPECIFIER = 'sandport-sdk';
const WIT_PREFIX = 'sandport:connector/';
/** The version of the contract (wit/connector.wit) this SDK is written for. */
const WIT_VERSION = '0.2.1';
/** WASI features of the engine to leave out: fetch() would import wasi:http,
 * which the sandbox does not offer. stdio (console.*), random and clocks
 * stay. */
const DISABLED_FEATURES = ['http', 'fetch-event'];

const here = dirname(fileURLToPath(import.meta.url));
// A project made by `sandport new` carries its own wit/ and says where.
const witDir = process.env.SANDPORT_WIT_DIR
  ? resolve(process.env.SANDPORT_WIT_DIR)
  : resolve(here, '..', '..', 'wit');
const sdkDir = join(here, 'src');
const me = 'guest-sdk/js/build.mjs';

class BuildError extends Error {}

function fail(message, code = 1) {
  throw Object.assign(new BuildError(message), { code });
}

function installHint(dir) {
  return `npm install --prefix ${dir} ${PACKAGE}@${COMPONENTIZE_JS_VERSION} ${SHIM}`;
}

/** The directory of the componentize-js package; fails with how to install it. */
function findComponentizeJs() {
  const tools = process.env.SANDPORT_JS_TOOLS;
  if (tools) {
    const dir = join(resolve(tools), 'node_modules', ...PACKAGE.split('/'));
    if (existsSync(join(dir, 'package.json'))) return dir;
    fail(
      `${PACKAGE} not found in SANDPORT_JS_TOOLS=${tools} (no ${dir}); install it with:\n` +
        `  ${installHint(tools)}`,
    );
  }
  // Node's lookup for a bare specifier: node_modules in this directory and
  // every parent.
  for (let dir = here; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', ...PACKAGE.split('/'));
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) break;
  }
  const dir = join(homedir(), '.cache', 'sandport-js-tools');
  fail(
    `${PACKAGE} not found (neither SANDPORT_JS_TOOLS is set nor node finds it from ${here}); ` +
      `install it into a directory outside the source tree and point SANDPORT_JS_TOOLS at it:\n` +
      `  ${installHint(dir)}\n  export SANDPORT_JS_TOOLS=${dir}`,
  );
}

async function loadTools() {
  const dir = findComponentizeJs();
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== COMPONENTIZE_JS_VERSION) {
    console.error(
      `${me}: warning: ${PACKAGE} ${pkg.version} found in ${dir}; this build is tested with ${COMPONENTIZE_JS_VERSION}`,
    );
  }
  const entry = typeof pkg.exports === 'object' ? pkg.exports.import ?? pkg.exports['.']?.import : undefined;
  const { componentize } = await import(pathToFileURL(join(dir, entry ?? 'src/componentize.js')).href);
  // es-module-lexer is a dependency of componentize-js: resolve it from there.
  const lexer = createRequire(join(dir, 'package.json'))('es-module-lexer');
  await lexer.init;
  return { componentize, lexer, version: pkg.version };
}

const SKIP = new Set(['node_modules', '.git']);

/** Copies the app directory (without node_modules, .git, *.wasm, and this
 * SDK when a project made by `sandport new` carries it inside). */
async function copyTree(from, to) {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.endsWith('.wasm')) continue;
    const src = join(from, entry.name);
    if (resolve(src) === here) continue;
    const dst = join(to, entry.name);
    if (entry.isDirectory()) await copyTree(src, dst);
    else if (entry.isFile()) await copyFile(src, dst);
  }
}

function jsFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...jsFiles(path));
    else if (['.js', '.mjs'].includes(extname(entry.name))) out.push(path);
  }
  return out;
}

/**
 * Points `sandport-sdk` in a staged app module at the staged SDK, and fails
 * on any other bare specifier (StarlingMonkey could not resolve it).
 */
async function linkModule(lexer, file, shown, sdkEntry) {
  const source = await readFile(file, 'utf8');
  let imports;
  try {
    [imports] = lexer.parse(source, shown);
  } catch {
    return; // leave it as it is: the engine reports the syntax error better
  }
  let target = relative(dirname(file), sdkEntry).split(sep).join('/');
  if (!target.startsWith('.')) target = `./${target}`;
  let out = '';
  let last = 0;
  for (const imp of imports) {
    const name = imp.n;
    if (name === undefined || imp.d === -2) continue; // import.meta, or a computed dynamic import
    const relativePath = name.startsWith('./') || name.startsWith('../') || name.startsWith('/');
    if (relativePath) continue;
    if (name.startsWith(WIT_PREFIX)) {
      if (!name.endsWith(`@${WIT_VERSION}`)) {
        fail(
          `${shown} imports \`${name}\`: this SDK builds for sandport:connector@${WIT_VERSION}; ` +
            `import \`${name.split('@')[0]}@${WIT_VERSION}\` (or use the SDK's own modules)`,
        );
      }
      continue;
    }
    if (name !== SDK_SPECIFIER) {
      fail(
        `${shown} imports \`${name}\`: a connector can import only modules by relative path, ` +
          `\`${SDK_SPECIFIER}\` and the WIT interfaces \`${WIT_PREFIX}...@${WIT_VERSION}\`; ` +
          `copy (or bundle) the dependency into the app directory`,
      );
    }
    // A static import's [s, e) is the specifier without quotes; a dynamic
    // one's is the whole argument, quotes included.
    const replacement = imp.d > -1 ? JSON.stringify(target) : target;
    out += source.slice(last, imp.s) + replacement;
    last = imp.e;
  }
  if (last > 0) await writeFile(file, out + source.slice(last));
}

async function main(argv) {
  if (argv.length !== 2) fail(`usage: node ${me} APP_DIR OUT.wasm`, 2);
  const [appDirArg, outArg] = argv;
  const appDir = resolve(appDirArg);
  const out = resolve(outArg);
  let module = process.env.APP_MODULE || 'app';
  if (!['.js', '.mjs'].includes(extname(module))) module += '.js';

  if (!existsSync(appDir) || !statSync(appDir).isDirectory()) fail(`${appDirArg} is not a directory`, 2);
  if (!existsSync(join(appDir, module))) {
    fail(`no module ${module} in ${appDirArg} (set APP_MODULE to its name)`, 2);
  }
  if (!existsSync(join(witDir, 'connector.wit'))) fail(`no WIT contract at ${witDir}`, 2);

  const tools = await loadTools();

  const keep = process.env.SANDPORT_JS_BUILD_DIR;
  let stage;
  if (keep) {
    stage = resolve(keep);
    for (const old of ['app', 'sandport-sdk', 'main.js']) rmSync(join(stage, old), { recursive: true, force: true });
    await mkdir(stage, { recursive: true });
  } else {
    stage = mkdtempSync(join(tmpdir(), 'sandport-js-build.'));
  }

  try {
    await copyTree(appDir, join(stage, 'app'));
    await copyTree(sdkDir, join(stage, 'sandport-sdk'));
    const sdkEntry = join(stage, 'sandport-sdk', 'index.js');
    for (const file of jsFiles(join(stage, 'app'))) {
      const shown = join(appDirArg, relative(join(stage, 'app'), file));
      await linkModule(tools.lexer, file, shown, sdkEntry);
    }
    // The entry re-exports the app, so that every staged module lies below
    // the directory componentize-js maps into the engine.
    const entry = join(stage, 'main.js');
    await writeFile(entry, `export * from './app/${module.split(sep).join('/')}';\n`);

    // The build evaluates the app's top level once (Wizer pre-initialisation),
    // so a module that fails to load fails the build, not the first check.
    // componentize-js maps the current directory into the engine when the
    // source lies below it; run it from the stage so only the stage is mapped.
    const cwd = process.cwd();
    process.chdir(stage);
    let component;
    try {
      ({ component } = await tools.componentize({
        sourcePath: entry,
        witPath: witDir,
        worldName: 'connector',
        disableFeatures: DISABLED_FEATURES,
      }));
    } catch (e) {
      let hint = '';
      if (/does not export a "connectorApi"/.test(e.message)) {
        hint = `\n(${module} must export the connector: export const connectorApi = exportConnector(MyConnector);)`;
      }
      fail(`componentize-js ${tools.version} failed: ${e.message}${hint}`);
    } finally {
      process.chdir(cwd);
    }
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, component);
    console.log(`built ${out} (${component.byteLength} bytes)`);
  } finally {
    if (!keep) rmSync(stage, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((e) => {
  if (e instanceof BuildError) {
    console.error(`${me}: ${e.message}`);
    process.exit(e.code);
  }
  console.error(e);
  process.exit(1);
});
