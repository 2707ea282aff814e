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
