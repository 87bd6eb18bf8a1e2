// A tiny static file server for the browser tests and the browser benchmark: 127.0.0.1 only,
// a random free port, GET/HEAD only, correct MIME types (application/wasm for the module).
//
//   import { serve } from "./server.mjs";
//   const server = await serve({ "/": repoRoot, "/files/": scratchDir });
//   page.goto(`${server.url}/tests/browser/index.html`); ... await server.close();
//
// `mounts` maps URL prefixes (ending in "/") to folders; the longest matching prefix wins,
// and paths that would leave a mounted folder are refused.

import { createServer } from "node:http";
import { createReadStream, statSync } from "node:fs";
import { extname, join, resolve, sep } from "node:path";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".css": "text/css; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** The MIME type of a file name (application/octet-stream when unknown: .gz, .safetensors). */
export function mimeType(name) {
  return MIME[extname(name).toLowerCase()] ?? "application/octet-stream";
}

/** Starts serving `mounts` ({ urlPrefix: folder }); resolves to { url, port, close() }. */
export function serve(mounts, { log = false } = {}) {
  const table = Object.entries(mounts)
    .map(([prefix, dir]) => [prefix.endsWith("/") ? prefix : prefix + "/", resolve(dir)])
    .sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    const fail = (code, text) => {
      res.writeHead(code, { "content-type": "text/plain; charset=utf-8" });
      res.end(text + "\n");
      if (log) console.error(`[server] ${code} ${req.method} ${req.url}: ${text}`);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return fail(405, "only GET and HEAD");
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, "http://127.0.0.1").pathname);
    } catch {
      return fail(400, "bad URL");
    }
    const mount = table.find(([prefix]) => (path + "/").startsWith(prefix) || path.startsWith(prefix));
    if (!mount) return fail(404, `nothing mounted at ${path}`);
    const [prefix, dir] = mount;
    let file = resolve(join(dir, path.slice(prefix.length)));
    if (file !== dir && !file.startsWith(dir + sep)) return fail(403, "outside the served folders");
    let stat;
    try {
      stat = statSync(file);
      if (stat.isDirectory()) {
        file = join(file, "index.html");
        stat = statSync(file);
      }
    } catch {
      return fail(404, `no such file: ${path}`);
    }
    res.writeHead(200, {
      "content-type": mimeType(file),
      "content-length": stat.size,
      "cache-control": "no-store",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).on("error", () => res.destroy()).pipe(res);
  });
  return new Promise((ok, bad) => {
    server.on("error", bad);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      ok({
        port,
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
