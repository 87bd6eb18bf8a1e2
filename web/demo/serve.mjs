#!/usr/bin/env node
// Serves the accrete demo on 127.0.0.1 with no dependencies beyond Node itself.
//
//   node web/demo/serve.mjs [PORT] [--data DIR] [--quiet]
//
//   /            → redirect to /demo/
//   /demo/…      → web/demo/ (the page), /pkg/… → web/pkg/ (the wasm package): the repository's
//                  web/ directory is the document root
//   /demo/data/… → the Fashion-MNIST IDX files, from DIR (default $ACCRETE_DATA or
//                  /usr/share/datasets/fashion-mnist), served as-is (.gz stays compressed:
//                  the page decompresses it with DecompressionStream)
//
// PORT defaults to 8080; 0 picks a free port. The URL is printed on stdout once listening.

import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB_ROOT = path.resolve(HERE, '..');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.gz': 'application/gzip',
  '.safetensors': 'application/octet-stream',
};
const mimeOf = (file) => MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream';

function usage(code) {
  const text = 'usage: node web/demo/serve.mjs [PORT] [--data DIR] [--quiet]\n' +
    '  PORT     port on 127.0.0.1 (default 8080; 0 = any free port)\n' +
    '  --data   directory holding the Fashion-MNIST IDX files served at /demo/data/\n' +
    '           (default $ACCRETE_DATA or /usr/share/datasets/fashion-mnist)\n' +
    '  --quiet  do not log requests\n';
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

let port = 8080;
let dataDir = process.env.ACCRETE_DATA || '/usr/share/datasets/fashion-mnist';
let quiet = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-h' || a === '--help') usage(0);
  else if (a === '--quiet') quiet = true;
  else if (a === '--data') {
    if (i + 1 >= args.length) usage(2);
    dataDir = args[++i];
  } else if (a.startsWith('--data=')) dataDir = a.slice('--data='.length);
  else if (/^\d+$/.test(a) && Number(a) < 65536) port = Number(a);
  else {
    process.stderr.write(`serve.mjs: unexpected argument '${a}'\n`);
    usage(2);
  }
}
dataDir = path.resolve(dataDir);

/** Maps a URL path to a file, or null when it is outside the served trees. */
function resolve(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const inside = (root, rel) => {
    const file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
    return file === root || file.startsWith(root + path.sep) ? file : null;
  };
  if (decoded.startsWith('/demo/data/')) {
    return { file: inside(dataDir, decoded.slice('/demo/data/'.length)), data: true };
  }
  return { file: inside(WEB_ROOT, decoded), data: false };
}

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

const server = createServer(async (req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    if (!quiet) console.log(`${res.statusCode} ${req.method} ${req.url} ${Date.now() - started} ms`);
  });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'only GET and HEAD\n');
  }
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/' || url.pathname === '/demo') {
    res.writeHead(302, { Location: '/demo/' });
    return res.end();
  }
  const target = resolve(url.pathname);
  if (!target || !target.file) return send(res, 403, 'forbidden\n');
  let file = target.file;
  let stat;
  try {
    stat = await fs.stat(file);
    if (stat.isDirectory()) {
      if (!url.pathname.endsWith('/')) {
        res.writeHead(301, { Location: url.pathname + '/' + url.search });
        return res.end();
      }
      file = path.join(file, 'index.html');
      stat = await fs.stat(file);
    }
  } catch {
    const where = target.data ? `${dataDir} (the --data directory)` : WEB_ROOT;
    const hint = url.pathname.startsWith('/pkg/') ? ' — build the package with: bash web/build.sh' : '';
    return send(res, 404, `not found: ${url.pathname} (looked in ${where})${hint}\n`);
  }
  res.writeHead(200, {
    'Content-Type': mimeOf(file),
    'Content-Length': stat.size,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
});

server.on('error', (e) => {
  process.stderr.write(`serve.mjs: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  console.log(`accrete demo: http://127.0.0.1:${actual}/demo/  (web root ${WEB_ROOT}, data ${dataDir})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
