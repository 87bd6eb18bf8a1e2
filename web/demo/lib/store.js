// Checkpoints in IndexedDB: one record per key, holding the bytes and a little context.

const DB = 'accrete-demo';
const STORE = 'checkpoints';

function open() {
  return new Promise((resolve, reject) => {
    if (!('indexedDB' in globalThis)) return reject(new Error('IndexedDB is not available in this browser context.'));
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB could not be opened.'));
    req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of this page; close it and retry.'));
  });
}

function tx(mode, fn) {
  return open().then((db) => new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = fn(t.objectStore(STORE));
    t.oncomplete = () => {
      db.close();
      resolve(req?.result);
    };
    t.onerror = t.onabort = () => {
      db.close();
      reject(t.error ?? new Error('IndexedDB transaction failed.'));
    };
  }));
}

/** Stores `record` ({ bytes: Uint8Array, ... }) under `key`. */
export const saveRecord = (key, record) => tx('readwrite', (s) => s.put(record, key));
/** The record under `key`, or undefined. */
export const loadRecord = (key) => tx('readonly', (s) => s.get(key));
