/**
 * A learning-curve plot as PNG, in plain TypeScript (no canvas, no system libraries): two panels over the
 * tokens seen, held-out MLM loss (top) and accuracy (bottom), the model in blue (the long-context phase in
 * red) and the unigram-frequency baseline as a grey dashed line. Light grid lines mark tenths of each axis.
 */
import { deflateSync } from 'node:zlib';

const W = 800;
const H = 600;
const M = 40;

const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An RGB image as PNG bytes (8-bit truecolour, filter 0 on every row). */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const raw = new Uint8Array(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * 3 * width, (y + 1) * 3 * width), y * (1 + 3 * width) + 1);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))];
  return Buffer.concat(parts);
}

type Rgb = [number, number, number];

/** Rows of the curve JSONL: tokens, eval_loss, mlm_accuracy, unigram_loss, unigram_accuracy, phase. */
export function plotCurvesPng(rows: Record<string, number | string>[]): Uint8Array {
  const img = new Uint8Array(W * H * 3).fill(255);
  const set = (x: number, y: number, c: Rgb) => {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    img.set(c, 3 * (Math.round(y) * W + Math.round(x)));
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: Rgb, dash = 0) => {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; i++) {
      if (dash && Math.floor(i / dash) % 2 === 1) continue;
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      set(x, y, c);
      set(x, y + 1, c);
    }
  };
  const maxTokens = Math.max(1, ...rows.map((r) => Number(r.tokens)));
  const panel = (top: number, key: string, base: string) => {
    const bottom = top + H / 2 - 2 * M;
    const values = rows.flatMap((r) => [Number(r[key]), Number(r[base])]).filter(Number.isFinite);
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const span = hi - lo || 1;
    const px = (t: number) => M + ((W - 2 * M) * t) / maxTokens;
    const py = (v: number) => bottom - ((bottom - top) * (v - lo)) / span;
    for (let i = 0; i <= 10; i++) {
      line(M, top + ((bottom - top) * i) / 10, W - M, top + ((bottom - top) * i) / 10, [230, 230, 230]);
      line(M + ((W - 2 * M) * i) / 10, top, M + ((W - 2 * M) * i) / 10, bottom, [230, 230, 230]);
    }
    line(M, bottom, W - M, bottom, [0, 0, 0]);
    line(M, top, M, bottom, [0, 0, 0]);
    line(px(0), py(Number(rows[0][base])), px(maxTokens), py(Number(rows[0][base])), [150, 150, 150], 6);
    for (let i = 1; i < rows.length; i++) {
      const colour: Rgb = rows[i].phase === 'phase2' ? [200, 30, 30] : [30, 80, 200];
      line(px(Number(rows[i - 1].tokens)), py(Number(rows[i - 1][key])), px(Number(rows[i].tokens)), py(Number(rows[i][key])), colour);
    }
  };
  panel(M, 'eval_loss', 'unigram_loss');
  panel(H / 2 + M, 'mlm_accuracy', 'unigram_accuracy');
  return encodePng(img, W, H);
}
