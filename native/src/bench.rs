//! `accrete bench matmul`: times every matmul kernel variant on square matrices and checks
//! each result against an f64 reference on a sample of rows; prints the variant `matmul`
//! picks for each size (the heuristic, or the autotuned choice with `--autotune`).
//!
//! The sweep driver lives here for now; it belongs in core once a second front end needs it.

use crate::{environment_help, Failure};
use accrete::gpu::{AutotuneMode, GpuTimer, TimeSource};
use accrete::kernels::matmul::{
    autotune, matmul_into, Kernel, MatmulSpec, Precision, SampledProduct, Tiles, Variant,
};
use accrete::{Error, Gpu, Tensor};
use clap::builder::PossibleValuesParser;
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::io::{self, Write};
use std::time::Instant;

pub const LONG_ABOUT: &str = "\
Time every matmul kernel variant on square matrices (M = N = K) and print one JSON line per
(variant, size) on stdout, plus one line per size (\"bench\": \"matmul_choice\") naming the
variant matmul itself picks there: the deterministic heuristic, or with --autotune the
fastest f32 candidate timed for that shape class (cached per adapter; \"source\" says which).

Variants: the tiled kernel (small16x16 .. wide128x64_8x4: scalar loads), vec4_* (vec4 loads
and reads, 4x4 or 8x8 outputs per thread), vec4db_* (the same with double-buffered tiles) and
f16* (operands rounded to f16 in workgroup memory, f32 sums; needs SHADER_F16, skipped with
the reason on adapters without it).

Each measurement builds the kernel, runs it once to warm up, then records --reps copies in
one compute pass and times them (GPU timestamps when the adapter has TIMESTAMP_QUERY, else
the host clock). \"seconds\" is the time of one multiply and gflops = 2·M·N·K / seconds.
The inputs are uniform in [-1, 1] from a seeded generator. After timing, --check-rows
random rows of C (always including the first and last) are compared with an f64
reference: an element is correct when |c - ref| <= (K + 2)·2^-23·Σ|a·b| (f32), plus for
f16 variants the bound of rounding each operand to f16 (2^-10 relative + 2^-14 absolute per
operand); \"max_rel_err\" is the largest |c - ref| / Σ|a·b| seen.

Sizes run from small to large. A size whose buffers exceed the device's limits is skipped,
and once a variant's timed run takes longer than --max-seconds its larger sizes are
skipped; each skip prints a JSON line with \"skipped\": true and the reason.

--autotune turns autotuning on for this run (persisting choices in the cache file, see
ACCRETE_AUTOTUNE_CACHE below) unless ACCRETE_AUTOTUNE already chose a mode.";

pub const EXAMPLES: &str = concat!(
    "Examples:
  accrete bench matmul                                   the full sweep, 256 to 4096
  accrete bench matmul --sizes 256,512 --reps 3          a quick check
  accrete bench matmul --variants large64x64_4x4,vec4db_128x128x16_8x8 --sizes 4096 --max-seconds inf
  accrete bench matmul --autotune --sizes 1024,8192 --variants vec4db_128x128x16_8x8
  accrete bench matmul | jq -r 'select(.gflops) | [.variant, .m, .gflops] | @tsv'

",
    environment_help!(),
    "
  ACCRETE_AUTOTUNE=1|memory|0  autotune matmul variants (and keep the choices in the cache
                               file | in memory only | no autotuning, the default)
  ACCRETE_AUTOTUNE_CACHE=PATH  the autotune cache file (default
                               $XDG_CACHE_HOME/accrete/autotune.json or ~/.cache/...)"
);

#[derive(Args, Debug)]
pub struct MatmulArgs {
    /// Square sizes to measure, comma-separated (run in increasing order).
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "256,512,1024,2048,4096",
        value_parser = clap::value_parser!(u64).range(1..=65536),
    )]
    pub sizes: Vec<u64>,

    /// Kernel variants to measure, comma-separated [default: all].
    #[arg(
        long,
        value_name = "NAME,...",
        value_delimiter = ',',
        value_parser = PossibleValuesParser::new(Variant::ALL.map(|(name, _)| name)),
    )]
    pub variants: Vec<String>,

    /// Autotune matmul for each size (time the f32 candidates, cache the fastest per adapter)
    /// and report the choice.
    #[arg(long)]
    pub autotune: bool,

    /// Multiplies per timed run, recorded in one compute pass.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub reps: u32,

    /// Skip a variant's larger sizes once one timed run (all reps) took longer than this; `inf` never skips.
    #[arg(long, value_name = "S", default_value_t = 20.0, value_parser = positive_seconds)]
    pub max_seconds: f64,

    /// Rows of C compared with the f64 reference for each measurement.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub check_rows: usize,

    /// Seed of the random inputs (each size derives its own stream, so results do not depend on --sizes).
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 => Ok(v),
        Ok(_) => Err("must be greater than 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run_matmul(args: &MatmulArgs) -> Result<(), Failure> {
    pollster::block_on(sweep(args))
}

/// One timed and checked multiply.
struct Measurement {
    /// Seconds per multiply.
    seconds: f64,
    /// Host wall-clock seconds of the whole timed run (all reps), for --max-seconds.
    wall_seconds: f64,
    correct: bool,
    max_rel_err: f64,
}

async fn sweep(args: &MatmulArgs) -> Result<(), Failure> {
    let gpu = Gpu::new().await?;
    let timer = GpuTimer::new(&gpu);
    let adapter = gpu.summary().name.clone();
    let variants = selected_variants(&args.variants);
    if args.autotune && !gpu.autotune_mode().is_on() {
        gpu.set_autotune(match accrete::gpu::cache_path_from_env() {
            Some(p) => AutotuneMode::Persist(p),
            None => AutotuneMode::Memory,
        });
    }
    let mut sizes: Vec<usize> = args.sizes.iter().map(|&s| s as usize).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let _ = writeln!(
        io::stderr(),
        "bench matmul on {adapter} ({}, {}), timing: {:?}, {} variant(s) x sizes {sizes:?}, autotune: {:?}",
        gpu.summary().backend,
        gpu.summary().device_type,
        timer.source(),
        variants.len(),
        gpu.autotune_mode(),
    );

    // Why each variant stopped growing, once it has.
    let mut stopped: Vec<Option<String>> = vec![None; variants.len()];
    let mut out = io::stdout().lock();
    for n in sizes {
        let mut emit = |name: &str, v: &Variant, outcome: Outcome| -> io::Result<()> {
            let record = Record {
                bench: "matmul",
                variant: name,
                kernel: v.kernel,
                precision: v.precision,
                tiles: v.tiles,
                m: n,
                n,
                k: n,
                outcome,
                adapter: &adapter,
            };
            let line = serde_json::to_string(&record).expect("a bench record serializes");
            writeln!(out, "{line}")
        };
        if let Some(reason) = too_large(&gpu, n) {
            for (name, variant) in &variants {
                emit(name, variant, Outcome::skipped(&reason))?;
            }
            continue;
        }
        if stopped.iter().all(Option::is_some) {
            for ((name, variant), why) in variants.iter().zip(&stopped) {
                emit(
                    name,
                    variant,
                    Outcome::skipped(why.as_deref().unwrap_or_default()),
                )?;
            }
            continue;
        }

        let mut rng =
            SmallRng::seed_from_u64(args.seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let a_host: Vec<f32> = (0..n * n)
            .map(|_| rng.random_range(-1.0f32..=1.0))
            .collect();
        let b_host: Vec<f32> = (0..n * n)
            .map(|_| rng.random_range(-1.0f32..=1.0))
            .collect();
        let rows = sample_rows(&mut rng, n, args.check_rows);
        let (a, b, c) = match upload(&gpu, n, &a_host, &b_host) {
            Ok(t) => t,
            Err(e @ Error::OverLimit { .. }) => {
                for (name, variant) in &variants {
                    emit(name, variant, Outcome::skipped(&e.to_string()))?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let expected = SampledProduct::of(&a_host, &b_host, n, rows);
        drop((a_host, b_host));
        let line = choice_line(&gpu, &a, &b, n, args.autotune, &adapter).await?;
        // `out` is borrowed by `emit`; stdout's lock is re-entrant and shares its buffer.
        writeln!(io::stdout(), "{line}")?;

        for ((name, variant), why) in variants.iter().zip(stopped.iter_mut()) {
            if let Some(reason) = why {
                emit(name, variant, Outcome::skipped(reason))?;
                continue;
            }
            match measure(&gpu, &timer, (&a, &b, &c), *variant, args.reps, &expected).await {
                Ok(m) => {
                    let wall_seconds = m.wall_seconds;
                    emit(
                        name,
                        variant,
                        Outcome::Measured {
                            seconds: m.seconds,
                            tolerance: match variant.precision {
                                Precision::F32 => "f32",
                                Precision::F16 => "f16_inputs",
                            },
                            gflops: 2.0 * (n as f64).powi(3) / m.seconds / 1e9,
                            timing: timer.source(),
                            reps: args.reps,
                            correct: m.correct,
                            max_rel_err: m.max_rel_err,
                            checked_rows: expected.rows.len(),
                            wall_seconds,
                        },
                    )?;
                    if wall_seconds > args.max_seconds {
                        *why = Some(format!(
                            "the {n}x{n}x{n} timed run took {wall_seconds:.1} s (--reps {}), over --max-seconds {}",
                            args.reps, args.max_seconds
                        ));
                    }
                }
                // The device cannot launch this size (e.g. too many workgroups): skip it.
                Err(e @ Error::OverLimit { .. }) => {
                    emit(name, variant, Outcome::skipped(&e.to_string()))?
                }
                // The device cannot run this variant at all (threads, workgroup memory, a
                // missing feature such as SHADER_F16).
                Err(e @ Error::InvalidArgument { .. }) => {
                    let reason = e.to_string();
                    emit(name, variant, Outcome::skipped(&reason))?;
                    *why = Some(reason);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// One line of output: a (variant, size) and what happened to it.
#[derive(Serialize)]
struct Record<'a> {
    bench: &'static str,
    variant: &'a str,
    kernel: Kernel,
    precision: Precision,
    tiles: Tiles,
    m: usize,
    n: usize,
    k: usize,
    #[serde(flatten)]
    outcome: Outcome,
    adapter: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Outcome {
    Measured {
        /// Seconds per multiply.
        seconds: f64,
        gflops: f64,
        timing: TimeSource,
        reps: u32,
        /// The error bound `correct` uses: "f32" or "f16_inputs" (f16 operand rounding + f32).
        tolerance: &'static str,
        correct: bool,
        max_rel_err: f64,
        checked_rows: usize,
        /// Host seconds of the whole timed run (all reps), which --max-seconds limits.
        wall_seconds: f64,
    },
    Skipped {
        skipped: bool,
        reason: String,
    },
}

impl Outcome {
    fn skipped(reason: &str) -> Self {
        Outcome::Skipped {
            skipped: true,
            reason: reason.to_string(),
        }
    }
}

/// The variant `matmul` picks for an n×n×n product (heuristic, or autotuned), as one JSON line.
async fn choice_line(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    n: usize,
    tune: bool,
    adapter: &str,
) -> Result<String, Failure> {
    let spec = MatmulSpec::default();
    let mut line = serde_json::json!({
        "bench": "matmul_choice",
        "m": n, "n": n, "k": n,
        "class": accrete::kernels::matmul::class_key(n, n, n, &spec),
    });
    if tune {
        let t = autotune(a, b, &spec).await?;
        let gflops: std::collections::BTreeMap<&String, f64> = t
            .seconds
            .iter()
            .map(|(k, s)| (k, 2.0 * (n as f64).powi(3) / s / 1e9))
            .collect();
        line["source"] = (if t.cached {
            "autotune_cache"
        } else {
            "autotune"
        })
        .into();
        line["choice"] = t.name.into();
        line["variant"] = serde_json::to_value(t.choice).expect("serializes");
        line["candidate_seconds"] = serde_json::to_value(&t.seconds).expect("serializes");
        line["candidate_gflops"] = serde_json::to_value(gflops).expect("serializes");
        line["timing"] = t.timing.into();
        line["measured_on"] = t.measured_on.into();
        line["cache_file"] = match gpu.autotune_mode() {
            AutotuneMode::Persist(p) => p.display().to_string().into(),
            _ => serde_json::Value::Null,
        };
        for w in gpu.take_autotune_warnings() {
            let _ = writeln!(io::stderr(), "warning: {w}");
        }
    } else {
        let v = Variant::heuristic(gpu, n, n, n);
        line["source"] = "heuristic".into();
        line["choice"] = v.name().into();
        line["variant"] = serde_json::to_value(v).expect("serializes");
    }
    line["adapter"] = adapter.into();
    Ok(line.to_string())
}

/// The variants named on the command line (in that order, without repeats), or all.
fn selected_variants(names: &[String]) -> Vec<(&'static str, Variant)> {
    if names.is_empty() {
        return Variant::ALL.to_vec();
    }
    let mut chosen: Vec<(&'static str, Variant)> = Vec::new();
    for name in names {
        if chosen.iter().any(|(n, _)| n == name) {
            continue;
        }
        // clap has already checked the name against Variant::ALL.
        if let Some(v) = Variant::ALL.iter().find(|(n, _)| n == name) {
            chosen.push(*v);
        }
    }
    chosen
}

/// Why an n×n f32 matrix cannot be bound on this device, if it cannot.
fn too_large(gpu: &Gpu, n: usize) -> Option<String> {
    let bytes = (n as u64) * (n as u64) * 4;
    let limit = gpu.max_binding_bytes();
    (bytes > limit).then(|| {
        format!(
            "each {n}x{n} f32 matrix (A, B and C) needs {bytes} bytes but this device binds at most {limit} \
             (max_storage_buffer_binding_size / max_buffer_size)"
        )
    })
}

fn upload(gpu: &Gpu, n: usize, a: &[f32], b: &[f32]) -> accrete::Result<(Tensor, Tensor, Tensor)> {
    Ok((
        Tensor::from_f32(gpu, &[n, n], a)?,
        Tensor::from_f32(gpu, &[n, n], b)?,
        Tensor::uninit(gpu, &[n, n], accrete::DType::F32)?,
    ))
}

/// `count` distinct rows of an n-row matrix, sorted, always including the first and last.
fn sample_rows(rng: &mut impl Rng, n: usize, count: usize) -> Vec<usize> {
    let count = count.min(n);
    if count == 0 {
        return Vec::new();
    }
    let mut rows = vec![0, n - 1];
    if count > 2 {
        let inner = rand::seq::index::sample(rng, n - 2, count - 2);
        rows.extend(inner.into_iter().map(|i| i + 1));
    }
    rows.truncate(count);
    rows.sort_unstable();
    rows.dedup();
    rows
}

async fn measure(
    gpu: &Gpu,
    timer: &GpuTimer,
    (a, b, c): (&Tensor, &Tensor, &Tensor),
    variant: Variant,
    reps: u32,
    expected: &SampledProduct,
) -> accrete::Result<Measurement> {
    let n = c.shape()[1];
    let spec = MatmulSpec {
        variant: Some(variant),
        ..Default::default()
    };
    let dispatch = matmul_into(a, b, None, c, &spec)?;
    // C is shared by the variants: poison it so that a kernel which skips elements fails.
    c.write_f32(&vec![f32::NAN; c.len()])?;
    gpu.run(&[&dispatch])?;
    gpu.wait_idle()?;
    gpu.check()?;

    let start = Instant::now();
    let total = timer.time(&[&dispatch], reps as usize).await?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let out = c.read_f32().await?;
    let (correct, max_rel_err) = expected.check(&out, n, n, variant.precision);
    Ok(Measurement {
        seconds: total / reps as f64,
        wall_seconds,
        correct,
        max_rel_err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_distinct_and_include_the_edges() {
        let mut rng = SmallRng::seed_from_u64(1);
        let rows = sample_rows(&mut rng, 4096, 16);
        assert_eq!(rows.len(), 16);
        assert_eq!((rows[0], rows[15]), (0, 4095));
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_rows(&mut rng, 5, 16), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_rows(&mut rng, 1, 16), vec![0]);
        assert_eq!(sample_rows(&mut rng, 7, 1), vec![0]);
    }

    #[test]
    fn variants_keep_command_line_order_without_repeats() {
        let names = ["wide128x64_8x4", "f16_64x64_4x4", "wide128x64_8x4"].map(String::from);
        let v = selected_variants(&names);
        assert_eq!(
            v.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["wide128x64_8x4", "f16_64x64_4x4"]
        );
        assert_eq!(selected_variants(&[]).len(), Variant::ALL.len());
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(positive_seconds("inf"), Ok(f64::INFINITY));
        assert_eq!(positive_seconds("2.5"), Ok(2.5));
        assert!(positive_seconds("0").is_err());
        assert!(positive_seconds("-1").is_err());
        assert!(positive_seconds("soon").is_err());
    }
}
