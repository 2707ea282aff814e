/**
 * Checkpoint loading: model.safetensors or a sharded model.safetensors.index.json, converted to
 * float32, read by Hugging Face tensor name with the shape checked against the config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsError, WeightError } from '../errors.js';
import { SafetensorsFile } from '../safetensors/safetensors.js';

export class WeightStore {
  private readonly owner = new Map<string, SafetensorsFile>();

  constructor(files: SafetensorsFile[]) {
    for (const f of files)
      for (const name of f.tensors.keys()) {
        // Two shards holding one name would make the result depend on shard order.
        const other = this.owner.get(name);
        if (other) throw new SafetensorsError(`tensor '${name}' is in both ${other.path} and ${f.path}`);
        this.owner.set(name, f);
      }
  }

  /** Reads `model.safetensors`, or the shards listed by `model.safetensors.index.json`, from `dir`. */
  static fromDirectory(dir: string): WeightStore {
    const single = join(dir, 'model.safetensors');
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(single)) return new WeightStore([SafetensorsFile.read(single)]);
    if (existsSync(index)) {
      let parsed: { weight_map?: Record<string, string> } | null;
      try {
        parsed = JSON.parse(readFileSync(index, 'utf8'));
      } catch (e) {
        throw new SafetensorsError(`${index} is not valid JSON: ${(e as Error).message}`);
      }
      const map = parsed?.weight_map;
      if (!map || typeof map !== 'object' || Array.isArray(map)) throw new SafetensorsError(`${index} has no "weight_map" object`);
      const shards = [...new Set(Object.values(map))];
      for (const s of shards)
        if (typeof s !== 'string' || !existsSync(join(dir, s)))
          throw new SafetensorsError(`${index} lists shard ${JSON.stringify(s)}, but ${join(dir, String(s))} does not exist`);
      const files = shards.map((s) => SafetensorsFile.read(join(dir, s)));
      const store = new WeightStore(files);
      for (const [name, shard] of Object.entries(map))
        if (store.owner.get(name)?.path !== join(dir, shard))
          throw new SafetensorsError(`${index} maps tensor '${name}' to ${shard}, but that shard does not contain it`);
      return store;
    }
    throw new SafetensorsError(`no weights in ${dir}: expected ${single} or ${index}`);
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  /** The tensor `name` as float32, checked to have `shape`; written into `into` (of its size) when given. */
  get(name: string, shape: number[], into?: Float32Array): Float32Array {
    const file = this.owner.get(name);
    if (!file) throw new WeightError(`checkpoint is missing tensor '${name}' (expected shape [${shape}])`);
    const found = file.entry(name).shape;
    if (found.length !== shape.length || found.some((d, i) => d !== shape[i]))
      throw new WeightError(`tensor '${name}' in ${file.path} has shape [${found}], but the config needs [${shape}]`);
    return file.float32(name, into);
  }

  /** `get` when the config enables the tensor (biases), else null. */
  optional(name: string, shape: number[], enabled: boolean): Float32Array | null {
    return enabled ? this.get(name, shape) : null;
  }
}
