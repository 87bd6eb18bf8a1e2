//! The MPI backend end to end (`[parallel] backend = "mpi"`): the `accrete` binary built
//! with `--features mpi`, run under `mpirun --allow-run-as-root --oversubscribe` on
//! lavapipe (every rank on the one software adapter).
//!
//! - 2 MPI ranks (all-reduce) = 2 local devices, byte for byte: every tensor of the last
//!   checkpoint (parameters and optimizer moments) and every event of metrics.jsonl but the
//!   timing; rank 1 writes nothing and prints nothing.
//! - A job SIGKILLed after its first checkpoint, then `mpirun … accrete resume`, ends
//!   byte-identical to the uninterrupted run.
//! - The synchronous parameter server (-np 3: 1 server + 2 workers) = all-reduce over 2
//!   workers, byte for byte.
//! - Bad input, refused with exit status 2 and nothing written: a parameter server with
//!   fewer than 2 ranks, a batch the ranks do not divide, max_staleness without a parameter
//!   server, ranks that read different configurations.
//!
//! Built only with the `mpi` feature of this package (`bash tests/mpi/run.sh`).

use accrete::train::Checkpoint;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The features tests/mpi/run.sh builds with: scripts/test.sh's plus `mpi`.
const MPI_FEATURES: &str = "accrete/ts,accrete-cli/mpi,accrete-tests/mpi";

/// The `accrete` binary with MPI, built once per test process in this test's target
/// directory and profile.
fn accrete_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The feature set of tests/mpi/run.sh (and, but for `mpi`, of scripts/test.sh), so
        // that cargo reuses their build of core and its dependencies.
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--exclude",
                "accrete-web",
            ])
            .args([
                "--bin",
                "accrete",
                "--features",
                MPI_FEATURES,
                "--target-dir",
            ])
            .arg(target_dir);
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("run cargo build").success());
        profile_dir.join("accrete")
    })
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mpi")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Three Gaussian-ish blobs in the plane, deterministic.
fn blobs_csv(n: usize, offset: usize) -> String {
    let centres = [(-1.0f32, -1.0f32), (1.0, -0.5), (0.0, 1.0)];
    let noise = |i: usize| ((i as f32 * 12.9898).sin() * 43758.545).fract();
    let mut s = String::from("x,y,label\n");
    for i in 0..n {
        let k = i + offset;
        let c = k % 3;
        let x = centres[c].0 + 0.45 * noise(2 * k);
        let y = centres[c].1 + 0.45 * noise(2 * k + 1);
        let _ = writeln!(s, "{x},{y},{c}");
    }
    s
}

const CONFIG: &str = r#"seed = 7

[data]
format = "csv"
train_file = "train.csv"
test_file = "test.csv"
validation_fraction = 0.2

[model]
input = [2]
layers = [
  { type = "dense", units = 16, activation = "tanh" },
  { type = "dense", units = 3 },
]

[optimizer]
type = "adam"
lr = 0.02
clip_norm = 1.0

[train]
batch_size = 8
epochs = 3

[incremental]
chunks = 2
split_by = "count"

[checkpoint]
every_steps = 5
keep_last = 0
"#;

/// A folder with the data and one configuration per `[parallel]` table given.
fn setup(name: &str, tables: &[(&str, &str)]) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("train.csv"), blobs_csv(240, 0)).unwrap();
    std::fs::write(dir.join("test.csv"), blobs_csv(60, 5000)).unwrap();
    for (file, table) in tables {
        std::fs::write(dir.join(file), format!("{CONFIG}\n[parallel]\n{table}\n")).unwrap();
    }
    dir
}

fn accrete(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(accrete_bin());
    cmd.current_dir(dir)
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

/// `mpirun -np N accrete ARGS`.
fn mpirun(dir: &Path, np: usize, args: &[&str]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.current_dir(dir)
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &np.to_string(),
        ])
        .arg(accrete_bin())
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Every tensor of two checkpoints bit for bit, and where they are in the run.
fn tensors_equal(a: &Path, b: &Path) {
    let (a, b) = (
        Checkpoint::read_file(a).unwrap(),
        Checkpoint::read_file(b).unwrap(),
    );
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(
            x.name == y.name && x.shape == y.shape && bits(&x.data) == bits(&y.data),
            "tensor {} differs between the runs",
            x.name
        );
    }
    assert_eq!(
        (a.meta.step, a.meta.epoch, &a.meta.cursor),
        (b.meta.step, b.meta.epoch, &b.meta.cursor)
    );
}

/// metrics.jsonl without the timing column.
fn events(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("samples_per_sec");
            v
        })
        .collect()
}

fn same_run(a: &Path, b: &Path) {
    tensors_equal(
        &a.join("checkpoints/last.safetensors"),
        &b.join("checkpoints/last.safetensors"),
    );
    assert_eq!(events(a), events(b));
}

const LOCAL2: &str = "backend = \"local\"\ndevices = 2";
const MPI: &str = "backend = \"mpi\"";
const PS: &str = "backend = \"mpi\"\nmode = \"parameter_server\"";

#[test]
fn two_mpi_ranks_equal_two_local_devices_byte_for_byte() {
    let dir = setup("allreduce", &[("local.toml", LOCAL2), ("mpi.toml", MPI)]);
    ok(accrete(
        &dir,
        &[
            "train",
            "--config",
            "local.toml",
            "--out",
            "local",
            "--quiet",
        ],
    ));
    let out = ok(mpirun(
        &dir,
        2,
        &["train", "--config", "mpi.toml", "--out", "mpi"],
    ));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // Rank 0 alone prints the summary (one line) and the progress.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("done: test accuracy"), "{stdout}");
    assert!(stderr.contains("2 MPI ranks, 2 workers"), "{stderr}");
    assert_eq!(
        stderr.matches("chunk 2/2 epoch 3/3: train loss").count(),
        1,
        "{stderr}"
    );
    same_run(&dir.join("local"), &dir.join("mpi"));
    // The sharding is real: one device with the same global batch ends elsewhere.
    std::fs::write(dir.join("one.toml"), CONFIG).unwrap();
    ok(accrete(
        &dir,
        &["train", "--config", "one.toml", "--out", "one", "--quiet"],
    ));
    let (a, b) = (
        Checkpoint::read_file(&dir.join("one/checkpoints/last.safetensors")).unwrap(),
        Checkpoint::read_file(&dir.join("mpi/checkpoints/last.safetensors")).unwrap(),
    );
    assert!(a
        .tensors
        .iter()
        .zip(&b.tensors)
        .any(|(x, y)| x.data != y.data));
}

#[test]
fn a_killed_mpi_job_resumes_byte_identically() {
    let dir = setup("resume", &[("mpi.toml", MPI)]);
    ok(mpirun(
        &dir,
        2,
        &[
            "train", "--config", "mpi.toml", "--out", "straight", "--quiet",
        ],
    ));
    let mut child = mpirun(
        &dir,
        2,
        &[
            "train", "--config", "mpi.toml", "--out", "killed", "--quiet",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let ckpt = dir.join("killed/checkpoints/last.safetensors");
    let start = Instant::now();
    while !ckpt.exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ckpt.exists(), "no checkpoint within 2 minutes");
    // SIGKILL one rank (a child of mpirun): MPI ends the whole job.
    let ranks = children(child.id());
    assert!(!ranks.is_empty(), "mpirun has no child processes");
    let status = Command::new("kill")
        .args(["-KILL", &ranks[ranks.len() - 1].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "the job survived a killed rank");
    assert!(
        !dir.join("killed/report").exists(),
        "the job finished before the kill"
    );
    ok(mpirun(&dir, 2, &["resume", "killed", "--quiet"]));
    same_run(&dir.join("straight"), &dir.join("killed"));
}

#[test]
fn the_synchronous_parameter_server_equals_all_reduce_over_its_workers() {
    let dir = setup("ps", &[("mpi.toml", MPI), ("ps.toml", PS)]);
    ok(mpirun(
        &dir,
        2,
        &["train", "--config", "mpi.toml", "--out", "ar", "--quiet"],
    ));
    let out = ok(mpirun(
        &dir,
        3,
        &["train", "--config", "ps.toml", "--out", "ps"],
    ));
    assert!(text(&out.stderr).contains("3 MPI ranks, 2 workers"));
    same_run(&dir.join("ar"), &dir.join("ps"));
}

/// The processes whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            if let Some(p) = e.file_name().to_str().and_then(|n| n.parse().ok()) {
                out.push(p);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Exit status 2, the message on stderr, and no run directory.
fn refused(mut cmd: Command, dir: &Path, message: &str) {
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
    assert!(
        err.contains(message),
        "{cmd:?}: want {message:?}, got: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.join("out").exists(), "{cmd:?} wrote its run directory");
}

#[test]
fn bad_mpi_setups_are_refused_with_exit_2_and_nothing_written() {
    let dir = setup(
        "bad",
        &[
            ("ps.toml", PS),
            ("mpi.toml", MPI),
            ("stale.toml", "backend = \"mpi\"\nmax_staleness = 2"),
        ],
    );
    let args = |c: &'static str| ["train", "--config", c, "--out", "out"];
    refused(
        mpirun(&dir, 1, &args("ps.toml")),
        &dir,
        "at least 2 MPI ranks",
    );
    refused(
        mpirun(&dir, 3, &args("mpi.toml")),
        &dir,
        "train.batch_size: 8 (the global batch) does not split over 3 workers (3 MPI ranks)",
    );
    refused(
        mpirun(&dir, 2, &args("stale.toml")),
        &dir,
        "parallel.max_staleness: only applies to mode = \"parameter_server\"",
    );
    // Two ranks reading different files (mpirun's MPMD form: rank 0 : rank 1).
    let other = CONFIG.replace("lr = 0.02", "lr = 0.01") + "\n[parallel]\nbackend = \"mpi\"\n";
    std::fs::write(dir.join("other.toml"), other).unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.current_dir(&dir)
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "1"])
        .arg(accrete_bin())
        .args(args("mpi.toml"))
        .args([":", "-np", "1"])
        .arg(accrete_bin())
        .args(args("other.toml"))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    refused(cmd, &dir, "MPI rank(s) 1 read a different configuration");
}
