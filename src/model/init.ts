/**
 * Fresh weights, as Hugging Face's `ModernBertPreTrainedModel._init_weights`: truncated normals cut at
 * ±initializer_cutoff_factor·std, with a std per role — "in" (Wqkv, Wi) and "embedding" = initializer_range,
 * "out" (attention and MLP Wo, head.dense, decoder) = initializer_range / sqrt(2·layers), "final_out"
 * (classifier) = hidden_size^−0.5; LayerNorm weights 1, every bias 0. A tied decoder is initialised last,
 * so the shared matrix ends with the "out" std, as in the reference.
 */
import type { ModernBertConfig } from '../config/config.js';
import { WeightError } from '../errors.js';
import { Rng } from '../train/random.js';
import { WeightStore } from './weights.js';

/** Standard normal from two uniforms (Box–Muller), resampled outside ±cutoff. */
function truncatedNormal(n: number, std: number, cutoff: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z: number;
    do {
      const u = 1 - rng.uniform(); // (0, 1]: log is finite
      z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.uniform());
    } while (Math.abs(z) > cutoff);
    out[i] = z * std;
  }
  return out;
}

/**
 * The reference's initial std of a tensor by its name, or 'one' / 'zero' for norms and biases.
 * `tiedDecoder`: the embeddings are a masked LM's tied decoder (initialised last, with the "out" std).
 */
export function initRole(name: string, config: ModernBertConfig, tiedDecoder: boolean): number | 'one' | 'zero' {
  if (name.endsWith('.bias')) return 'zero';
  if (/norm\.weight$/.test(name)) return 'one';
  const r = config.initializer_range;
  const out = r / Math.sqrt(2 * config.num_hidden_layers);
  if (name.endsWith('tok_embeddings.weight')) return tiedDecoder ? out : r;
  if (/(Wqkv|Wi)\.weight$/.test(name)) return r;
  if (/(Wo|head\.dense|decoder)\.weight$/.test(name)) return out;
  if (name.startsWith('classifier.')) return config.hidden_size ** -0.5;
  throw new Error(`no initialisation rule for tensor '${name}'`);
}

/** A WeightStore that creates fresh tensors on request (seeded), for training from scratch. */
export class InitialWeights extends WeightStore {
  private readonly rng: Rng;

  constructor(
    private readonly config: ModernBertConfig,
    seed = 0,
    private readonly tiedDecoder = false,
  ) {
    super([]);
    this.rng = new Rng(seed);
  }

  override has(): boolean {
    return true;
  }

  override names(): string[] {
    return [];
  }

  override get(name: string, shape: number[], into?: Float32Array): Float32Array {
    const n = shape.reduce((a, b) => a * b, 1);
    const role = initRole(name, this.config, this.tiedDecoder);
    const out = role === 'zero' ? new Float32Array(n) : role === 'one' ? new Float32Array(n).fill(1)
      : truncatedNormal(n, role, this.config.initializer_cutoff_factor, this.rng);
    if (!into) return out;
    into.set(out);
    return into;
  }
}

/**
 * A checkpoint with fresh weights for the tensors it lacks or whose shape differs (a classifier for a new
 * label count, a task head on a masked-LM checkpoint), as Hugging Face does when it warns "newly initialized".
 * `fresh` lists the names that were initialised.
 */
export class WeightsWithFallback extends WeightStore {
  readonly fresh: string[] = [];
  private readonly init: InitialWeights;

  constructor(
    private readonly store: WeightStore,
    config: ModernBertConfig,
    /** Only these tensors may be initialised; any other missing tensor is still an error. */
    private readonly allowed: (name: string) => boolean,
    seed = 0,
  ) {
    super([]);
    this.init = new InitialWeights(config, seed);
  }

  override has(name: string): boolean {
    return this.store.has(name);
  }

  override names(): string[] {
    return this.store.names();
  }

  override get(name: string, shape: number[], into?: Float32Array): Float32Array {
    if (!this.allowed(name)) return this.store.get(name, shape, into);
    if (this.store.has(name)) {
      try {
        return this.store.get(name, shape, into);
      } catch (e) {
        if (!(e instanceof WeightError)) throw e; // a shape mismatch (another label count): initialise below
      }
    }
    this.fresh.push(name);
    return this.init.get(name, shape, into);
  }
}
