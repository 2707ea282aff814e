/** Backward of a bias add: db[N] += Σ_t dout[t, N] for dout [T, N] (the other backward kernels live in `Kernels`). */
export function biasBackward(db: Float32Array, dout: Float32Array, T: number, N: number): void {
  const acc = new Float64Array(N);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) acc[n] += dout[t * N + n];
  for (let n = 0; n < N; n++) db[n] += acc[n];
}
