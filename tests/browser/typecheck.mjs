// `tsc --noEmit` on types/check.ts against the built package (web/pkg): node_modules/accrete-web
// in types/ links to web/pkg, so "accrete-web" resolves through the package's exports map and
// its accrete_web.d.ts (checked too: skipLibCheck is off). Run by run.sh before the browser
// tests; needs `npm ci` (typescript is a devDependency) and web/pkg.

import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const pkg = join(ROOT, "web/pkg");
const tsc = join(HERE, "node_modules/typescript/bin/tsc");
if (!existsSync(join(pkg, "accrete_web.d.ts"))) throw new Error("web/pkg is missing: bash web/build.sh");
if (!existsSync(tsc)) throw new Error("typescript is missing: npm ci in tests/browser");

const modules = join(HERE, "types/node_modules");
const link = join(modules, "accrete-web");
mkdirSync(modules, { recursive: true });
if (existsSync(link) || (() => { try { return lstatSync(link).isSymbolicLink(); } catch { return false; } })()) {
  rmSync(link, { recursive: true, force: true });
}
symlinkSync(pkg, link, "dir");
const version = execFileSync(process.execPath, [tsc, "--version"], { encoding: "utf8" }).trim();
const started = Date.now();
try {
  execFileSync(process.execPath, [tsc, "--noEmit", "-p", join(HERE, "types/tsconfig.json")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
} catch {
  console.log(`FAIL typecheck: tsc (${version}) found errors in tests/browser/types/check.ts or web/pkg/accrete_web.d.ts`);
  process.exit(1);
}
console.log(`PASS typecheck: tsc --noEmit (${version}) on types/check.ts (${((Date.now() - started) / 1000).toFixed(1)} s)`);
