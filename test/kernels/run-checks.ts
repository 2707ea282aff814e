/**
 * Child-process entry for the kernel tests: `node --import tsx test/kernels/run-checks.ts attention|elementwise`.
 * The parent sets MODERNBERT_ISA and MODERNBERT_NUM_THREADS (read once per process); a failed check throws,
 * so the exit status is non-zero and stderr names the check.
 */
import { nativeInfo } from '../../src/kernels/native.js';
import { attentionBf16Checks, attentionChecks, elementwiseChecks } from './kernel-checks.js';

const suites: Record<string, (log: (line: string) => void) => void> = {
  attention: attentionChecks,
  attentionBf16: attentionBf16Checks,
  elementwise: elementwiseChecks,
};
const suite = suites[process.argv[2]];
if (!suite) throw new Error(`unknown suite '${process.argv[2]}': use ${Object.keys(suites).join(' or ')}`);
const info = nativeInfo();
console.log(`isa=${info.isa} threads=${info.threads}`);
console.log(`bf16Attention=${info.bf16Attention}`);
suite((line) => console.log(line));
