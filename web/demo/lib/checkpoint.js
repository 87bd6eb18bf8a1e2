// Reads the accrete metadata of a .safetensors checkpoint in JS (the model spec, counters,
// preprocessing) so the page can describe and check a file before handing it to Trainer.load.

const fmt = (n) => (n < 1e3 ? `${n} bytes` : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`);

/** The parsed `accrete` metadata of a checkpoint, or throws an Error saying what is wrong. */
export function readMeta(bytes, name = 'the file') {
  if (bytes.length < 8) throw new Error(`${name} is too short to be a .safetensors checkpoint (${bytes.length} bytes).`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n < 2 || n > bytes.length - 8 || n > 100e6) {
    throw new Error(`${name} is not a .safetensors checkpoint: its first 8 bytes should give the length of a JSON header inside the file (${fmt(bytes.length)}), and do not.`);
  }
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw new Error(`${name} is not a .safetensors checkpoint (its header is not JSON).`);
  }
  const raw = header?.__metadata__?.accrete;
  if (!raw) throw new Error(`${name} is a safetensors file but not an accrete checkpoint (no "accrete" metadata).`);
  try {
    return JSON.parse(raw);
  } catch {
    throw new Error(`${name}: its accrete metadata is not valid JSON.`);
  }
}

/** "dense 256 relu → dense 10" style summary of a model spec. */
export function describeModel(model) {
  const parts = (model?.layers ?? []).map((l) => {
    const act = l.activation && l.activation !== 'identity' ? ` ${l.activation}` : '';
    switch (l.type) {
      case 'dense': return `dense ${l.units}${act}`;
      case 'conv2d': return `conv ${l.filters}×${l.kernel}²${act}`;
      case 'maxpool2d': return `maxpool ${l.size}`;
      case 'avgpool2d': return `avgpool ${l.size}`;
      case 'dropout': return `dropout ${l.rate}`;
      case 'activation': return l.activation;
      default: return l.type;
    }
  });
  return `[${(model?.input ?? []).join('×')}] → ${parts.filter((p) => p !== 'flatten').join(' → ')}`;
}

/** Units of the model's output (the last dense layer), or null. */
export function outputUnits(model) {
  const dense = (model?.layers ?? []).filter((l) => l.type === 'dense');
  return dense.length ? dense[dense.length - 1].units : null;
}
