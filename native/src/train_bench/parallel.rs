//! `accrete bench train --devices N`: data-parallel training over N local replicas (each its
//! own device; on one adapter they share it) against one device in the same run, one JSON
//! line per epoch and configuration: samples/s, the communication share, bytes moved per
//! step and the scaling efficiency (samples/s over N × the one-device samples/s).

use super::{bad_arg, write_line, ModelChoice, TrainBenchArgs};
use crate::Failure;
use accrete::data::idx::{load_dir, Split};
use accrete::data::Dataset;
use accrete::nn::presets;
use accrete::nn::ModelSpec;
use accrete::optim::OptimizerSpec;
use accrete::train::{TrainSpec, Trainer};
use accrete::Gpu;
use serde::Serialize;

#[derive(Serialize)]
struct Line<'a> {
    bench: &'static str,
    model: ModelChoice,
    /// The global batch (each replica takes batch / devices rows of every step).
    batch: usize,
    devices: usize,
    /// 1: gradients all-reduced every step; K: local SGD, parameters averaged every K steps.
    sync_every: u64,
    epoch: usize,
    train_samples: usize,
    seconds: f64,
    samples_per_sec: f64,
    /// Seconds of the epoch spent moving and reducing gradients or parameters (after the
    /// replicas' work finished), and that over the epoch's seconds.
    comm_seconds: f64,
    comm_share: f64,
    /// Bytes read back and written per optimizer step, all replicas together.
    bytes_per_step: f64,
    /// samples_per_sec / (devices × the one-device samples_per_sec of the same epoch).
    scaling_efficiency: f64,
    train_loss: f64,
    train_accuracy: f64,
    adapter: &'a str,
}

fn model_and_data(args: &TrainBenchArgs) -> Result<(ModelSpec, Dataset), Failure> {
    let spec = match args.model {
        ModelChoice::Mlp => presets::fashion_mlp(),
        ModelChoice::Cnn => presets::fashion_cnn(),
    };
    let mut train = load_dir(&args.data_dir, Split::Train)?;
    if let Some(n) = args.train_limit {
        train = train.take(n);
    }
    let train = train.reshaped(&spec.input)?;
    Ok((spec, train))
}

/// `--mpi` under `mpirun -np N`: one replica per rank, all-reduce (the first --sync-every);
/// rank 0 prints the lines (`devices` = ranks; scaling efficiency is not known in one job:
/// compare the samples/s of `-np 1` and `-np N`).
pub fn run_mpi(args: &TrainBenchArgs) -> Result<(), Failure> {
    let (spec, train) = model_and_data(args)?;
    let fingerprint = format!("{args:?}");
    let (world, gpu) = crate::mpi::join(&fingerprint)?;
    let ranks = world.comm.size();
    let sync_every = args.sync_every.first().copied().unwrap_or(1);
    let adapter = gpu.summary().name.clone();
    let mut out = std::io::stdout().lock();
    for &batch in &args.batch {
        if !batch.is_multiple_of(ranks) {
            return Err(bad_arg(
                "--batch",
                format!("{batch} does not split over {ranks} MPI ranks; use a multiple of {ranks}"),
            ));
        }
        let ts = TrainSpec {
            batch_size: batch,
            epochs: args.epochs,
            ..Default::default()
        };
        let mut t = Trainer::new(
            &gpu,
            spec.clone(),
            OptimizerSpec::adam(args.lr),
            ts,
            args.seed,
        )?;
        t.enable_collective(world.comm.clone(), false, sync_every)?;
        let data = t.upload_training(&train)?;
        for epoch in 1..=args.epochs {
            let before = t.comm_stats();
            let s = pollster::block_on(t.fit_epoch(&data))?;
            let c = t.comm_stats();
            let comm = c.seconds - before.seconds;
            if world.is_root() {
                let line = Line {
                    bench: "train_mpi",
                    model: args.model,
                    batch,
                    devices: ranks,
                    sync_every,
                    epoch,
                    train_samples: s.samples,
                    seconds: s.seconds,
                    samples_per_sec: s.samples_per_second(),
                    comm_seconds: comm,
                    comm_share: comm / s.seconds.max(1e-9),
                    bytes_per_step: (c.bytes - before.bytes) as f64
                        / s.samples.div_ceil(batch).max(1) as f64,
                    scaling_efficiency: f64::NAN,
                    train_loss: s.loss,
                    train_accuracy: s.accuracy,
                    adapter: &adapter,
                };
                write_line(&mut out, &line)?;
            }
        }
    }
    Ok(())
}

pub fn run(args: &TrainBenchArgs) -> Result<(), Failure> {
    let (spec, train) = model_and_data(args)?;
    let n = args.devices;
    let mut gpus = Vec::with_capacity(n);
    for i in 0..n {
        gpus.push(pollster::block_on(Gpu::new()).map_err(|e| {
            bad_arg(
                "--devices",
                format!(
                    "device {} of {n} could not be opened ({e}); lower --devices",
                    i + 1
                ),
            )
        })?);
    }
    let adapter = gpus[0].summary().name.clone();
    let mut out = std::io::stdout().lock();
    for &batch in &args.batch {
        if !batch.is_multiple_of(n) {
            return Err(bad_arg(
                "--batch",
                format!("{batch} does not split over {n} devices; use a multiple of {n}"),
            ));
        }
        let mut single = Vec::new();
        let mut configs = vec![(1usize, 1u64)];
        configs.extend(args.sync_every.iter().map(|&k| (n, k)));
        for (devices, sync_every) in configs {
            let ts = TrainSpec {
                batch_size: batch,
                epochs: args.epochs,
                ..Default::default()
            };
            let mut t = Trainer::new(
                &gpus[0],
                spec.clone(),
                OptimizerSpec::adam(args.lr),
                ts,
                args.seed,
            )?;
            if devices > 1 {
                t.enable_replicas(&gpus[1..devices], sync_every)?;
            }
            let data = t.upload_training(&train)?;
            for epoch in 1..=args.epochs {
                let before = t.comm_stats();
                let s = pollster::block_on(t.fit_epoch(&data))?;
                let c = t.comm_stats();
                let sps = s.samples_per_second();
                if devices == 1 {
                    single.push(sps);
                }
                let base = single.get(epoch - 1).copied().unwrap_or(f64::NAN);
                let comm = c.seconds - before.seconds;
                let line = Line {
                    bench: "train_parallel",
                    model: args.model,
                    batch,
                    devices,
                    sync_every,
                    epoch,
                    train_samples: s.samples,
                    seconds: s.seconds,
                    samples_per_sec: sps,
                    comm_seconds: comm,
                    comm_share: comm / s.seconds.max(1e-9),
                    bytes_per_step: (c.bytes - before.bytes) as f64
                        / s.samples.div_ceil(batch).max(1) as f64,
                    scaling_efficiency: sps / (devices as f64 * base),
                    train_loss: s.loss,
                    train_accuracy: s.accuracy,
                    adapter: &adapter,
                };
                write_line(&mut out, &line)?;
            }
        }
    }
    Ok(())
}
