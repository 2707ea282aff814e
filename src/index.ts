/** The public API of the ModernBERT library. */
export { ModernBertConfig } from './config/config.js';
export type { LayerType, ProblemType } from './config/config.js';
export { ConfigError, InputError, ModernBertError, SafetensorsError, WeightError } from './errors.js';
export { measureFmaPeak, nativeInfo, setNumThreads } from './kernels/native.js';
export { ModernBertModel } from './model/modernbert.js';
export type { EncoderOutput, ForwardInput, LoadOptions, PackedInput } from './model/modernbert.js';
export { ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertForTokenClassification } from './model/heads.js';
export type { SequenceClassifierOutput, TaskOutput } from './model/heads.js';
export { SafetensorsFile, writeSafetensors } from './safetensors/safetensors.js';
export { Tensor } from './tensor/tensor.js';
export { FlatParameters, Parameter } from './model/parameter.js';
export type { NamedParameters } from './model/parameter.js';
export type { SequenceLabels, TokenLabels } from './model/heads.js';
export { Loss, TrainingError } from './train/losses.js';
export type { TaskLoadOptions } from './model/heads.js';
export { Trainer } from './train/trainer.js';
export type { LogRecord, TrainableModel, TrainerOptions, TrainingData } from './train/trainer.js';
export { AdamW, clipGradNorm, StableAdamW } from './train/optim.js';
export type { AdamWOptions } from './train/optim.js';
export { batchSizeAt, learningRate } from './train/schedule.js';
export type { BatchSizeWarmup, ScheduleOptions, ScheduleType } from './train/schedule.js';
export {
  collectAll, DataError, encodeExamples, maskTokens, packByTokens, packStream, readCsv, readExamples, readJsonl, readText,
  shuffleStream,
} from './train/data.js';
export type { ColumnOptions, EncodeOptions, Example, MaskingOptions, Sequence, TokenEncoder } from './train/data.js';
export { accuracy, f1, matthews, pearson, spearman } from './train/metrics.js';
