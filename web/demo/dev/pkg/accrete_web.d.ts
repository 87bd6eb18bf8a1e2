/* tslint:disable */
/* eslint-disable */

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
export interface ClassScores { class: number; precision: number; recall: number; f1: number; support: number; auc: number | null; }
export interface EvaluateResult {
    samples: number; loss: number; accuracy: number;
    /** confusion[true class][predicted class] = count. */
    confusion: number[][];
    perClass: ClassScores[]; macroF1: number; macroAuc: number | null;
}



/**
 * A training session on the GPU: a model, its optimizer state and counters. Create one with
 * `Trainer.create(spec)` or `Trainer.load(bytes)`.
 */
export class Trainer {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * A fresh model from a session spec: a JSON string (or a plain object) with the run
     * configuration's `model` (required), `optimizer`, `train`, `seed`, `recovery`,
     * `incremental.rehearsal` and `data.standardize`. Rejects naming the key at fault.
     */
    static create(spec: string | object): Promise<Trainer>;
    /**
     * Loss, accuracy, confusion matrix and per-class scores on labelled data (dropout off),
     * computed as the native `accrete eval` computes them.
     */
    evaluate(x: Float32Array | number[], y: Uint32Array | number[]): Promise<EvaluateResult>;
    /**
     * Trains on one chunk of data, continuing from the current weights, optimizer moments
     * and counters, for `options.epochs` epochs (default: the spec's `train.epochs`).
     * `options.onProgress(p)` is called at report points. Resolves to the last epoch's loss
     * and accuracy, the steps taken and per-epoch statistics.
     */
    fitChunk(x: Float32Array | number[], y: Uint32Array | number[], options: FitOptions): Promise<FitResult>;
    /**
     * A trainer that continues exactly where a checkpoint left off: bytes from `save()`, or
     * a `.safetensors` checkpoint written by the native `accrete train` (a `Uint8Array` or
     * `ArrayBuffer`). Its standardisation, if any, is applied to every input.
     */
    static load(bytes: Uint8Array | ArrayBuffer): Promise<Trainer>;
    /**
     * Class probabilities for every sample: a `Float32Array` of n × classes values.
     */
    predict(x: Float32Array | number[]): Promise<Float32Array>;
    /**
     * A checkpoint of everything needed to continue exactly: the `.safetensors` bytes the
     * native CLI writes and reads (`accrete eval`, `accrete predict`, `[finetune] from`).
     */
    save(): Promise<Uint8Array>;
    /**
     * Asks a running `fitChunk` to stop at its next report point; it then resolves with
     * `stopped: true` and calling it again with the same data continues exactly. Returns
     * whether a `fitChunk` was running.
     */
    stop(): boolean;
    /**
     * Whether an operation is running (its name), or `undefined`.
     */
    readonly busy: string | undefined;
    /**
     * Number of classes (outputs of the last layer).
     */
    readonly classes: number;
    /**
     * Epochs completed so far (as of the last finished operation).
     */
    readonly epoch: number;
    /**
     * The metrics history as JSON: one object per epoch (chunk, epoch, step, train_loss,
     * train_accuracy, samples_per_sec, lr), and rollbacks when recovery is on.
     */
    readonly history: string;
    /**
     * Features per sample (the product of the model's input shape).
     */
    readonly inputLen: number;
    /**
     * The model spec as JSON (`{"input": [...], "layers": [...]}`).
     */
    readonly spec: string;
    /**
     * Optimizer steps taken so far (as of the last finished operation).
     */
    readonly step: number;
}

/**
 * Opens the preferred GPU adapter and resolves to a plain object describing it
 * (name, backend, device type, driver, limits, features).
 *
 * Rejects with an `Error` whose message says what to do when WebGPU is unavailable
 * (no `navigator.gpu`, or no adapter) or the device cannot be created.
 */
export function adapterInfo(): Promise<any>;

/**
 * The version of this crate (and of the accrete workspace), e.g. `"0.1.0"`.
 */
export function version(): string;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_trainer_free: (a: number, b: number) => void;
    readonly adapterInfo: () => any;
    readonly trainer_busy: (a: number) => [number, number];
    readonly trainer_classes: (a: number) => number;
    readonly trainer_create: (a: any) => any;
    readonly trainer_epoch: (a: number) => number;
    readonly trainer_evaluate: (a: number, b: any, c: any) => any;
    readonly trainer_fitChunk: (a: number, b: any, c: any, d: any) => any;
    readonly trainer_history: (a: number) => [number, number];
    readonly trainer_inputLen: (a: number) => number;
    readonly trainer_load: (a: any) => any;
    readonly trainer_predict: (a: number, b: any) => any;
    readonly trainer_save: (a: number) => any;
    readonly trainer_spec: (a: number) => [number, number];
    readonly trainer_step: (a: number) => number;
    readonly trainer_stop: (a: number) => number;
    readonly version: () => [number, number];
    readonly wasm_bindgen_6288ff713e934341___convert__closures_____invoke___js_sys_a752b8a5bbb6df18___Function_fn_wasm_bindgen_6288ff713e934341___JsValue_____wasm_bindgen_6288ff713e934341___sys__Undefined___js_sys_a752b8a5bbb6df18___Function_fn_wasm_bindgen_6288ff713e934341___JsValue_____wasm_bindgen_6288ff713e934341___sys__Undefined_______true_: (a: number, b: number, c: any, d: any) => void;
    readonly wasm_bindgen_6288ff713e934341___convert__closures_____invoke___wasm_bindgen_6288ff713e934341___JsValue__core_12f89f2d8a73214f___result__Result_____wasm_bindgen_6288ff713e934341___JsError___true_: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen_6288ff713e934341___convert__closures_____invoke___wasm_bindgen_6288ff713e934341___sys__JsNullable_wgpu_ee07c55172acb2fe___backend__webgpu__webgpu_sys__gen_GpuError__GpuError___core_12f89f2d8a73214f___result__Result_____wasm_bindgen_6288ff713e934341___JsError___true_: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen_6288ff713e934341___convert__closures_____invoke___wasm_bindgen_6288ff713e934341___sys__JsNullable_wgpu_ee07c55172acb2fe___backend__webgpu__webgpu_sys__gen_GpuError__GpuError___core_12f89f2d8a73214f___result__Result_____wasm_bindgen_6288ff713e934341___JsError___true__20: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen_6288ff713e934341___convert__closures_____invoke___wasm_bindgen_6288ff713e934341___sys__JsNullable_wgpu_ee07c55172acb2fe___backend__webgpu__webgpu_sys__gen_GpuError__GpuError___core_12f89f2d8a73214f___result__Result_____wasm_bindgen_6288ff713e934341___JsError___true__21: (a: number, b: number, c: any) => [number, number];
    readonly wasm_bindgen_6288ff713e934341___convert__closures_____invoke___wgpu_ee07c55172acb2fe___backend__webgpu__webgpu_sys__gen_GpuDeviceLostInfo__GpuDeviceLostInfo______true_: (a: number, b: number, c: any) => void;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_destroy_closure: (a: number, b: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
