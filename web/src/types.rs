//! The TypeScript declarations of what the package returns (results, progress, history
//! events, adapter info), written by hand into `accrete_web.d.ts`; the spec types beside
//! them are generated from core's Rust types (feature `ts`). The browser tests' key checks
//! guard these against drift.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Called by fitChunk at report points (every `reportEvery` steps and at each epoch's end). */
export interface FitProgress {
  /** Epoch of this call, 1-based, and the epochs it runs. */
  epoch: number; epochs: number;
  /** Steps done in this epoch, of stepsInEpoch. */
  stepInEpoch: number; stepsInEpoch: number;
  /** Optimizer steps taken by the trainer so far. */
  step: number;
  /** Running mean loss and accuracy of the current epoch. */
  loss: number; accuracy: number; samplesPerSec: number;
  /** Chunks completed before this one. */
  chunk: number;
}
export interface FitOptions {
  /** Epochs over this chunk (default: the spec's train.epochs). */
  epochs?: number;
  /** The base learning rate (optimizer.lr) from this chunk on; a change is recorded in
   * the history (optimizer moments carry over). Default: unchanged. */
  lr?: number;
  /** Progress callback; throwing from it stops training and rejects fitChunk. */
  onProgress?: (p: FitProgress) => void;
  /** Steps between progress reports (default: about 10 per epoch; 0 = only at epoch ends). */
  reportEvery?: number;
}
export interface EpochStats { loss: number; accuracy: number; samples: number; seconds: number; samplesPerSec: number; }
export interface FitResult {
  /** The last epoch's mean training loss and accuracy. */
  loss: number; accuracy: number;
  /** Steps taken by this call, and the trainer's step and epoch counters after it. */
  steps: number; step: number; epoch: number;
  epochs: EpochStats[];
  seconds: number; samplesPerSec: number;
  /** True when stop() ended the call early (call fitChunk with the same data to go on). */
  stopped: boolean;
}
/** `datasetFromSafetensors`: the tensors holding the features and the labels. */
export interface SafetensorsDatasetOptions { features?: string; labels?: string; }
/** A dataset read from a file: `n` samples of `sampleShape`, row-major in `x`; `y` the
 * class indices; `classes` the largest label + 1. */
export interface ArrayDataset { x: Float32Array; y: Uint32Array; n: number; sampleShape: number[]; classes: number; }
/** `Trainer.evaluate`'s per-class scores. */
export interface ClassScores { class: number; precision: number; recall: number; f1: number; support: number; auc: number | null; }
export interface EvaluateResult {
  samples: number; loss: number; accuracy: number;
  /** confusion[true class][predicted class] = count. */
  confusion: number[][];
  perClass: ClassScores[]; macroF1: number; macroAuc: number | null;
}
/** What kind of failure an AccreteError is. */
export type ErrorCode =
  /* the caller's input: a spec, an argument, data, a checkpoint, a size */
  | "invalid_argument" | "shape" | "data" | "over_limit" | "io" | "adapter_not_found"
  /* the environment and the run */
  | "no_webgpu" | "no_adapter" | "device_request" | "gpu" | "read_back" | "diverged" | "write"
  /* the trainer: another call is running, or it was freed */
  | "busy" | "disposed" | "internal";
/** Every Promise of the package rejects with one of these (and every getter or call that
 * fails throws one); a value thrown by an onProgress callback is passed on unchanged. */
export interface AccreteError extends Error { name: "AccreteError"; code: ErrorCode; }
/** One row of `Trainer.history` (camelCase keys; `historyJson` has the native ones). */
export type HistoryEvent =
  | { event: "epoch"; chunk: number; epoch: number; epochInChunk: number; step: number;
      trainLoss: number | null; trainAccuracy: number | null; valLoss?: number; valAccuracy?: number;
      lr: number; samplesPerSec: number | null; lossScale?: number; skippedSteps?: number }
  | { event: "rollback"; chunk: number; epoch: number; step: number; badLoss: number | string;
      lastGoodLoss: number | null; newLr: number; strategy?: Strategy; detail?: string; extraSteps: number }
  | { event: "early_stop"; chunk: number; epoch: number; step: number; restoredEpochsBack: number;
      bestValue: number | null; bestEpoch?: number }
  | { event: "early_stop_chunk"; chunk: number; epochsRun: number; epoch: number; step: number }
  | { event: "chunk_end"; chunk: number; epoch: number; step: number; data: string; samples: number;
      accuracy: number | null; taskAccuracy: (number | null)[]; averageAccuracy?: number; bwt?: number;
      forgetting?: number }
  | { event: "hyper_change"; chunk: number; epoch: number; step: number;
      source: "resume" | "schedule" | "call"; changes: { key: string; from: unknown; to: unknown }[];
      optimizerReset: boolean };
/** `Trainer.setChunkEvaluation`: `tasks`, the chunks of a class-incremental stream (chunk i
 * brings the classes of `taskGroups(classes, tasks)[i]`); without it only the accuracy on
 * all the data is recorded. */
export interface ChunkEvaluationOptions { tasks?: number }
/** Where `Trainer.create`, `Trainer.load` and `adapterInfo` run: "auto" (default) takes a
 * hardware WebGPU adapter, else the CPU backend (no WebGPU, or a software adapter such as
 * SwiftShader). */
export interface DeviceOptions { backend?: "auto" | "gpu" | "cpu" }
/** `adapterInfo()`: the device `auto` (or `options.backend`) takes; backend "Cpu" for the CPU backend. */
export interface AdapterInfo {
  name: string; backend: string; deviceType: string; driver: string; driverInfo: string;
  maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number; maxComputeWorkgroupsPerDimension: number;
  /** Features that matter to accrete ("SHADER_F16", "SUBGROUP", "TIMESTAMP_QUERY", …). */
  features: string[];
  /** The browser's own GPUAdapter.info, where it gives one. */
  browser?: { vendor?: string; architecture?: string; device?: string; description?: string };
}
"#;
