// Fetches and parses IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or not.

/** An error whose message says which file failed and where it was looked for. */
export class DataError extends Error {
  constructor(message, hints = []) {
    super(message);
    this.name = 'DataError';
    this.hints = hints;
  }
}

/**
 * Fetches `name` (e.g. 'train-images-idx3-ubyte') from `base`, trying `name.gz` first (then
 * decompressed with DecompressionStream) and `name` second. `onBytes(received, total)`
 * reports download progress. Resolves to the parsed IDX: { dims, data: Uint8Array }.
 */
export async function fetchIdx(base, name, onBytes = () => {}) {
  const attempts = [];
  let serverSays = '';
  for (const file of [`${name}.gz`, name]) {
    const url = new URL(file, base).href;
    let res;
    try {
      res = await fetch(url, { cache: 'no-store' });
    } catch (e) {
      attempts.push(`${url} (${e.message})`);
      continue;
    }
    if (!res.ok) {
      attempts.push(`${url} (HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''})`);
      if (!serverSays && /^text\/plain/.test(res.headers.get('content-type') ?? '')) {
        serverSays = (await res.text().catch(() => '')).trim().split('\n')[0].slice(0, 300);
      }
      continue;
    }
    const total = Number(res.headers.get('content-length')) || 0;
    let received = 0;
    let stream = res.body.pipeThrough(new TransformStream({
      transform(chunk, ctl) {
        received += chunk.byteLength;
        onBytes(received, total);
        ctl.enqueue(chunk);
      },
    }));
    // A server that sends Content-Encoding: gzip has already had the body decoded by fetch.
    const gz = file.endsWith('.gz') && !/gzip/i.test(res.headers.get('content-encoding') ?? '');
    if (gz) stream = stream.pipeThrough(new DecompressionStream('gzip'));
    let bytes;
    try {
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    } catch (e) {
      throw new DataError(`${file} from ${url} could not be ${gz ? 'decompressed' : 'read'}: ${e.message}. Is it a complete gzip file?`);
    }
    return parseIdx(bytes, file);
  }
  throw new DataError(`Could not load ${name}.gz — looked for ${attempts.join(' and ')}.`, [
    ...(serverSays ? [`The server says: ${serverSays}`] : []),
    'Serve the page with `node web/demo/serve.mjs`, which serves /usr/share/datasets/fashion-mnist under data/ beside the page (or pass --data DIR).',
    'Embedding elsewhere: point the element\'s data attribute at a folder holding the four Fashion-MNIST IDX files.',
  ]);
}

/** Parses an unsigned-byte IDX file: magic 0x0000_08_NN, NN big-endian u32 dimensions. */
export function parseIdx(bytes, file = 'IDX file') {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(`${file} is not an IDX file (bad magic number).`);
  }
  if (bytes[2] !== 0x08) {
    throw new DataError(`${file} holds IDX type 0x${bytes[2].toString(16)}; only unsigned bytes (0x08) are supported.`);
  }
  const nd = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * nd) throw new DataError(`${file} is truncated (header).`);
  const dims = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * nd;
  if (bytes.length < start + count) {
    throw new DataError(`${file} is truncated: its header promises ${count} values, it holds ${bytes.length - start}.`);
  }
  return { dims, data: bytes.subarray(start, start + count) };
}
