/** Base class of every error this library throws on bad input; `name` says which part failed. */
export class ModernBertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A safetensors file (or shard index) that cannot be read: names the file and, where known, the tensor. */
export class SafetensorsError extends ModernBertError {}

/** A config.json that is missing, malformed or holds an invalid value: names the file and the key. */
export class ConfigError extends ModernBertError {}

/** A checkpoint whose tensors do not fit the config: names the tensor, the expected and the found shape. */
export class WeightError extends ModernBertError {}

/** Model inputs that cannot be run: names the row, position or value at fault. */
export class InputError extends ModernBertError {}
