// Runs every test/**/*.test.ts with node's test runner (tsx compiles TypeScript on the fly).
// Usage: node scripts/run-tests.mjs [filter]   — the filter keeps files whose path contains it.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

const filter = process.argv[2] ?? '';
const files = find('test').filter((f) => f.includes(filter)).sort();
// A test that hangs fails after 10 minutes, and the whole run is stopped after 40, so CI never stalls.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', ...files], {
  stdio: 'inherit',
  timeout: 40 * 60 * 1000,
  killSignal: 'SIGKILL',
});
if (r.error) console.error(`run-tests: ${r.error.message}`);
process.exit(r.status ?? 1);
