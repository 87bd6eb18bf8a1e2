//! Autotuning state: which kernel variant a kernel module found fastest for a class of
//! problems on this adapter, kept in memory per [`Gpu`] and, natively, in a small JSON file.
//!
//! Autotuning is **opt-in** ([`AutotuneMode::Off`] is the default): without it every kernel
//! picks its variant with a deterministic rule of the device and the shape, so "same seed on
//! the same device ⇒ bit-identical results" holds without conditions. With it, an explicit tuning pass run
//! before the dispatches are built (for matmul, `kernels::matmul::tune_problems`, which the
//! trainer runs for each program it builds) times a few candidates for each problem class not
//! tuned yet and keeps the fastest; launches then only read these choices. The
//! candidates a kernel offers must compute bit-identical results on a conforming device (the
//! matmul candidates all evaluate the same fused multiply-add chain), and the persisted
//! choice keeps later runs on the same choice even so.
//!
//! Environment (native, read when the device is opened):
//! - `ACCRETE_AUTOTUNE=1` (or `on`, `true`): tune, and persist choices in the cache file;
//!   `memory`: tune, keep the choices for this process only; unset, `0`, `off`: no tuning.
//! - `ACCRETE_AUTOTUNE_CACHE=<path>`: the cache file; default
//!   `$XDG_CACHE_HOME/accrete/autotune.json`, else `$HOME/.cache/accrete/autotune.json`.
//!
//! The file holds one map of problem keys to entries per adapter key (adapter name, driver,
//! driver info, backend). A file that cannot be read or parsed is ignored with a warning
//! (never a panic), and writes go to a temporary file renamed over the old one, so a reader
//! never sees half a file.

use super::{Gpu, TimeSource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Version of the cache file format; files of another version are ignored.
pub const AUTOTUNE_CACHE_VERSION: u32 = 1;

/// Whether kernels time their candidate variants, and where choices are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AutotuneMode {
    /// No timing: every kernel uses its deterministic choice (the default).
    #[default]
    Off,
    /// The tuning pass times candidates for classes not tuned yet, and launches use the
    /// choices; they are kept in memory for this device only.
    Memory,
    /// As `Memory`, and load and save the choices in this JSON file (native only).
    Persist(PathBuf),
}

impl AutotuneMode {
    /// The mode for the values of `ACCRETE_AUTOTUNE` and `ACCRETE_AUTOTUNE_CACHE`, with
    /// `default_path` used when the second is unset or empty. Returns a warning for a value
    /// it does not understand (and then leaves tuning off).
    pub fn parse(
        autotune: Option<&str>,
        cache: Option<&str>,
        default_path: Option<PathBuf>,
    ) -> (AutotuneMode, Option<String>) {
        let path = cache
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from)
            .or(default_path);
        match autotune.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "0" | "off" | "false" | "no") => (AutotuneMode::Off, None),
            Some("memory") => (AutotuneMode::Memory, None),
            Some("1" | "on" | "true" | "yes") => match path {
                Some(p) => (AutotuneMode::Persist(p), None),
                None => (
                    AutotuneMode::Memory,
                    Some(
                        "ACCRETE_AUTOTUNE is on but there is no cache path (set \
                         ACCRETE_AUTOTUNE_CACHE, XDG_CACHE_HOME or HOME); choices are kept in \
                         memory only"
                            .into(),
                    ),
                ),
            },
            Some(other) => (
                AutotuneMode::Off,
                Some(format!(
                    "ACCRETE_AUTOTUNE={other:?} is not one of 1, on, memory, 0, off; autotuning \
                     stays off"
                )),
            ),
        }
    }

    /// The mode the environment asks for (always `Off` in the browser).
    pub fn from_env() -> (AutotuneMode, Option<String>) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let var = |k: &str| std::env::var(k).ok();
            AutotuneMode::parse(
                var("ACCRETE_AUTOTUNE").as_deref(),
                var("ACCRETE_AUTOTUNE_CACHE").as_deref(),
                default_cache_path(),
            )
        }
        #[cfg(target_arch = "wasm32")]
        (AutotuneMode::Off, None)
    }

    /// True unless `Off`.
    pub fn is_on(&self) -> bool {
        *self != AutotuneMode::Off
    }
}

/// `ACCRETE_AUTOTUNE_CACHE` when set and not empty, else [`default_cache_path`] (native).
pub fn cache_path_from_env() -> Option<PathBuf> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::env::var_os("ACCRETE_AUTOTUNE_CACHE")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(default_cache_path)
    }
    #[cfg(target_arch = "wasm32")]
    None
}

/// `$XDG_CACHE_HOME/accrete/autotune.json`, else `$HOME/.cache/accrete/autotune.json`.
pub fn default_cache_path() -> Option<PathBuf> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let abs = |k: &str| {
            std::env::var_os(k)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        abs("XDG_CACHE_HOME")
            .or_else(|| abs("HOME").map(|h| h.join(".cache")))
            .map(|d| d.join("accrete").join("autotune.json"))
    }
    #[cfg(target_arch = "wasm32")]
    None
}

/// One tuned problem class: the choice and what was measured to make it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedEntry {
    /// The chosen variant, in the form the kernel module serializes it.
    pub choice: serde_json::Value,
    /// The chosen variant's name, for people reading the file.
    pub name: String,
    /// Seconds per run of every candidate timed, by name.
    pub seconds: BTreeMap<String, f64>,
    /// The clock used: "timestamp" (GPU timestamp queries) or "wall" (host clock).
    pub timing: String,
    /// The problem the candidates were timed on (the first of its class), e.g. "256x256x256".
    pub measured_on: String,
}

impl TunedEntry {
    pub fn timing_of(source: TimeSource) -> String {
        match source {
            TimeSource::Timestamp => "timestamp".into(),
            TimeSource::Wall => "wall".into(),
        }
    }
}

/// The cache file: per adapter key, per problem key, the tuned entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutotuneCache {
    pub version: u32,
    pub adapters: BTreeMap<String, BTreeMap<String, TunedEntry>>,
}

impl Default for AutotuneCache {
    fn default() -> Self {
        AutotuneCache {
            version: AUTOTUNE_CACHE_VERSION,
            adapters: BTreeMap::new(),
        }
    }
}

impl AutotuneCache {
    /// Reads `path`. A missing file is an empty cache; a file that cannot be read, is not
    /// valid JSON of this format, or has another version is an empty cache plus a warning.
    pub fn load(path: &Path) -> (AutotuneCache, Option<String>) {
        let text = match crate::input_file::read_text_if_exists(
            path,
            crate::input_file::InputKind::Config,
        ) {
            Ok(Some(t)) => t,
            Ok(None) => return (AutotuneCache::default(), None),
            Err(e) => {
                return (
                    AutotuneCache::default(),
                    Some(format!(
                        "ignoring the autotune cache {}: cannot read it ({e})",
                        path.display()
                    )),
                )
            }
        };
        match Self::parse(&text) {
            Ok(c) => (c, None),
            Err(e) => (
                AutotuneCache::default(),
                Some(format!(
                    "ignoring the autotune cache {}: {e}; it will be rewritten with new choices",
                    path.display()
                )),
            ),
        }
    }

    /// Parses the file's text, refusing other versions.
    pub fn parse(text: &str) -> Result<AutotuneCache, String> {
        let c: AutotuneCache =
            serde_json::from_str(text).map_err(|e| format!("not a valid cache file ({e})"))?;
        if c.version != AUTOTUNE_CACHE_VERSION {
            return Err(format!(
                "cache format version {} (this build reads version {AUTOTUNE_CACHE_VERSION})",
                c.version
            ));
        }
        Ok(c)
    }

    /// Writes the cache to `path` atomically: a temporary file in the same directory,
    /// renamed over `path` (creating the directory if needed).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            use std::io::Write;
            use std::sync::atomic::{AtomicU64, Ordering};
            static SERIAL: AtomicU64 = AtomicU64::new(0);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(format!(
                ".tmp.{}.{}",
                std::process::id(),
                SERIAL.fetch_add(1, Ordering::Relaxed)
            ));
            let tmp = path.with_file_name(name);
            let text = serde_json::to_string_pretty(self).expect("the cache serializes");
            let written = std::fs::File::create(&tmp).and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()
            });
            let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
            if renamed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            renamed
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = path;
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "no files in the browser",
            ))
        }
    }

    /// Merges `entries` for `adapter` into the file at `path` (re-reading it first, so that
    /// choices another process saved meanwhile survive) and writes it back atomically.
    /// Returns the warning of a corrupted file that was replaced, if any.
    pub fn merge_into_file(
        path: &Path,
        adapter: &str,
        entries: &BTreeMap<String, TunedEntry>,
    ) -> std::io::Result<Option<String>> {
        let (mut cache, warning) = AutotuneCache::load(path);
        let mine = cache.adapters.entry(adapter.to_string()).or_default();
        for (k, v) in entries {
            mine.insert(k.clone(), v.clone());
        }
        cache.save(path)?;
        Ok(warning)
    }
}

/// The key an adapter's choices are cached under: name, driver, driver info and backend.
pub(crate) fn adapter_key(s: &super::AdapterSummary) -> String {
    format!(
        "{} | {} | {} | {}",
        s.name, s.driver, s.driver_info, s.backend
    )
}

/// Per-device autotuning state (inside [`Gpu`]).
pub(crate) struct Tuner {
    state: Mutex<TunerState>,
}

struct TunerState {
    mode: AutotuneMode,
    entries: BTreeMap<String, TunedEntry>,
    warnings: Vec<String>,
    /// Problem classes a launch met untuned (warned about once each).
    untuned: BTreeSet<String>,
}

impl Tuner {
    /// The state for a device on adapter `key`, in the mode the environment asks for.
    pub(crate) fn from_env(key: &str) -> Tuner {
        let (mode, warning) = AutotuneMode::from_env();
        let tuner = Tuner {
            state: Mutex::new(TunerState {
                mode: AutotuneMode::Off,
                entries: BTreeMap::new(),
                warnings: Vec::new(),
                untuned: BTreeSet::new(),
            }),
        };
        if let Some(w) = warning {
            tuner.warn(w);
        }
        tuner.set_mode(key, mode);
        tuner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TunerState> {
        // The state stays consistent even if a holder panicked: every update is one insert.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn warn(&self, w: String) {
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("accrete: warning: {w}");
        self.lock().warnings.push(w);
    }

    fn set_mode(&self, key: &str, mode: AutotuneMode) {
        let loaded = match &mode {
            AutotuneMode::Persist(path) => Some(AutotuneCache::load(path)),
            _ => None,
        };
        let warning = {
            let mut s = self.lock();
            s.mode = mode;
            match loaded {
                Some((mut cache, warning)) => {
                    // Choices made in this process win over the file's.
                    if let Some(file) = cache.adapters.remove(key) {
                        for (k, v) in file {
                            s.entries.entry(k).or_insert(v);
                        }
                    }
                    warning
                }
                None => None,
            }
        };
        if let Some(w) = warning {
            self.warn(w);
        }
    }
}

impl Gpu {
    /// The key choices are cached under: adapter name, driver, driver info and backend.
    pub fn autotune_key(&self) -> String {
        adapter_key(&self.inner.summary)
    }

    /// Whether launches use tuned choices and the tuning pass times candidates (see
    /// [`AutotuneMode`]).
    pub fn autotune_mode(&self) -> AutotuneMode {
        self.inner.autotune.lock().mode.clone()
    }

    /// Turns autotuning on or off for this device. `Persist` loads the file's choices for
    /// this adapter (a corrupted file is ignored with a warning) and saves new ones to it.
    /// Dispatches built earlier keep the variant they were built with.
    pub fn set_autotune(&self, mode: AutotuneMode) {
        self.inner.autotune.set_mode(&self.autotune_key(), mode);
    }

    /// Warnings from autotuning (unreadable cache, failed timing, failed save, a launch built
    /// for a class the tuning pass did not see) since the last call; natively each is also printed to stderr when it happens.
    pub fn take_autotune_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.autotune.lock().warnings)
    }

    /// Every choice known for this device (tuned here or loaded from the file).
    pub fn autotune_entries(&self) -> BTreeMap<String, TunedEntry> {
        self.inner.autotune.lock().entries.clone()
    }

    /// The cached entry for `problem`, if any (whatever the mode).
    pub fn autotuned(&self, problem: &str) -> Option<TunedEntry> {
        self.inner.autotune.lock().entries.get(problem).cloned()
    }

    /// Records a choice; in `Persist` mode also merges it into the cache file (a failure to
    /// write becomes a warning).
    pub fn record_autotuned(&self, problem: &str, entry: TunedEntry) {
        let persist = {
            let mut s = self.inner.autotune.lock();
            s.entries.insert(problem.to_string(), entry.clone());
            match &s.mode {
                AutotuneMode::Persist(p) => Some(p.clone()),
                _ => None,
            }
        };
        if let Some(path) = persist {
            let one = BTreeMap::from([(problem.to_string(), entry)]);
            match AutotuneCache::merge_into_file(&path, &self.autotune_key(), &one) {
                Ok(None) => {}
                Ok(Some(w)) => self.inner.autotune.warn(w),
                Err(e) => self.inner.autotune.warn(format!(
                    "could not save the autotune cache {}: {e}",
                    path.display()
                )),
            }
        }
    }

    /// Records a warning about autotuning (a tuning pass that failed).
    pub(crate) fn autotune_warning(&self, w: String) {
        self.inner.autotune.warn(w);
    }

    /// Records the warning `w` that a launch was built for `problem` before the tuning pass
    /// saw it — once per problem class, so a graph rebuilt every epoch warns only once.
    pub(crate) fn autotune_untuned(&self, problem: &str, w: String) {
        let first = self
            .inner
            .autotune
            .lock()
            .untuned
            .insert(problem.to_string());
        if first {
            self.inner.autotune.warn(w);
        }
    }
}
