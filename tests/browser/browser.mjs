// Launching headless Chromium with WebGPU (SwiftShader when there is no GPU) on a page served
// from 127.0.0.1, shared by the browser tests (run.mjs) and the browser benchmark
// (benchmarks/browser_bench.mjs).

import { chromium } from "playwright-core";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "./server.mjs";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Chromium's binary: $CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM || "/usr/lib/chromium/chromium";

/** Without --enable-unsafe-webgpu headless Linux Chromium offers no WebGPU adapter. */
export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu-sandbox",
  "--enable-unsafe-webgpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/**
 * Serves the wasm package, the test folder, the benchmarks folder and `extra` mounts, launches
 * Chromium (a fresh temporary profile) and opens `page` (a path on the server), waiting until
 * it sets window.testReady. Resolves to { browser, page, server, console: [messages], close }.
 */
export async function open(pagePath, { extra = {}, timeout = 120_000, webgpu = true } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM`);
  }
  if (!existsSync(resolve(ROOT, "web/pkg/accrete_web.js"))) {
    throw new Error("web/pkg/ is missing: build it with `bash web/build.sh`");
  }
  const server = await serve({
    "/web/pkg/": resolve(ROOT, "web/pkg"),
    "/tests/browser/": resolve(ROOT, "tests/browser"),
    "/benchmarks/": resolve(ROOT, "benchmarks"),
    ...extra,
  });
  // headless: false because CHROMIUM_ARGS chooses the headless mode itself (--headless=new).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: false,
    // webgpu: false launches Chromium without --enable-unsafe-webgpu: no WebGPU adapter, the
    // way a browser without WebGPU looks to a page.
    args: webgpu ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== "--enable-unsafe-webgpu"),
    timeout,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  const messages = [];
  page.on("console", (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => messages.push(`pageerror: ${e.message}`));
  const close = async () => {
    await browser.close().catch(() => {});
    await server.close();
  };
  try {
    await page.goto(`${server.url}${pagePath}`);
    await page.waitForFunction(() => window.testReady || window.testError, null, { timeout });
    const failed = await page.evaluate(() => window.testError);
    if (failed) throw new Error(`the page failed to load the wasm package: ${failed}`);
  } catch (e) {
    await close();
    throw new Error(`${e.message}\nconsole:\n${messages.join("\n")}`);
  }
  return { browser, page, server, console: messages, close };
}
