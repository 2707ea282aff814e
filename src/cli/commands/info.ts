/** `modernbert info`: the kernels and threads in use, and a model's configuration and size. */
import { nativeInfo } from '../../kernels/native.js';
import { loadConfig } from '../../model/modernbert.js';
import { resolveModel } from '../../hub/hub.js';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { OUTPUT_FORMAT, type CliCommand } from '../options.js';

export const infoCommand: CliCommand = {
  name: 'info',
  description: 'show the CPU kernels (ISA, bf16 path) and threads in use, and with --model a model summary',
  options: [
    { flags: '-m, --model <dirOrId>', description: 'model folder or Hugging Face repo id' },
    { flags: '--revision <rev>', description: 'branch, tag or commit of a Hub model', default: 'main' },
    { flags: '--offline', description: 'use only the local cache' },
    OUTPUT_FORMAT,
  ],
  async run(_args, o) {
    const native = nativeInfo();
    const info: Record<string, unknown> = {
      isa: native.isa,
      bf16: native.bf16,
      bf16Attention: native.bf16Attention,
      threads: native.threads,
      features: Object.entries(native.features).filter(([, on]) => on).map(([f]) => f),
      node: process.version,
    };
    if (typeof o.model === 'string') {
      const dir = await resolveModel(o.model, { revision: o.revision as string, localFilesOnly: o.offline === true ? true : undefined, files: 'model' });
      const c = loadConfig(dir);
      const parameters = countParameters(dir);
      info.model = {
        path: dir,
        architecture: c.architectures[0] ?? 'ModernBertModel',
        parameters,
        vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_hidden_layers: c.num_hidden_layers, num_attention_heads: c.num_attention_heads,
        intermediate_size: c.intermediate_size, max_position_embeddings: c.max_position_embeddings, local_attention: c.local_attention,
        global_attn_every_n_layers: c.global_attn_every_n_layers, labels: c.architectures[0]?.includes('Classification') ? Object.values(c.id2label) : undefined,
      };
    }
    if (o.json) return console.log(JSON.stringify(info));
    console.log(`kernels: ${info.isa} (${(info.features as string[]).join(', ')})`);
    console.log(`bf16 (--dtype bf16): Linear ${info.bf16}, attention ${info.bf16Attention}`);
    console.log(`threads: ${info.threads}`);
    if (info.model) for (const [k, v] of Object.entries(info.model)) if (v !== undefined) console.log(`${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
  },
};

/** Parameters in a checkpoint, from the safetensors headers alone (a tied decoder.weight counted once). */
function countParameters(dir: string): number {
  const index = join(dir, 'model.safetensors.index.json');
  const files = existsSync(join(dir, 'model.safetensors'))
    ? ['model.safetensors']
    : [...new Set(Object.values((JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map))];
  const shapes = new Map<string, number[]>();
  for (const f of files) {
    const fd = openSync(join(dir, f), 'r');
    try {
      const len = Buffer.alloc(8);
      readSync(fd, len, 0, 8, 0);
      const header = Buffer.alloc(Number(len.readBigUInt64LE()));
      readSync(fd, header, 0, header.length, 8);
      for (const [name, v] of Object.entries(JSON.parse(header.toString('utf8')) as Record<string, { shape?: number[] }>))
        if (name !== '__metadata__' && v.shape) shapes.set(name, v.shape);
    } finally {
      closeSync(fd);
    }
  }
  const tok = shapes.get('model.embeddings.tok_embeddings.weight');
  const dec = shapes.get('decoder.weight');
  if (tok && dec && tok.join() === dec.join()) shapes.delete('decoder.weight');
  return [...shapes.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
}
