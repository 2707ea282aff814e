// The portable kernels, forced by MODERNBERT_ISA=portable, still match every fixture: a child
// process (the ISA is chosen once per process) runs fixtures.test.ts with that environment.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

/** The environment of a child node: ours plus `extra`, without the test runner's own marker (the child is a fresh run). */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

describe('MODERNBERT_ISA=portable', () => {
  it('the addon reports the portable path when capped', () => {
    const script = `import { nativeInfo } from ${JSON.stringify(join(repoRoot, 'src/kernels/native.ts'))}; console.log(JSON.stringify(nativeInfo()));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot, encoding: 'utf8', env: childEnv({ MODERNBERT_ISA: 'portable' }),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).isa, 'portable');
  });

  it('every fixture still matches with the portable kernels', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', join(here, 'fixtures.test.ts')], {
      cwd: repoRoot, encoding: 'utf8', env: childEnv({ MODERNBERT_ISA: 'portable' }), timeout: 10 * 60 * 1000,
    });
    const failures = r.stdout.split('\n').filter((l) => /^\s*not ok/.test(l));
    assert.equal(r.status, 0, `portable fixture run failed:\n${failures.join('\n')}\n${r.stderr}`);
    const passed = Number(/^# pass (\d+)/m.exec(r.stdout)?.[1] ?? 0);
    assert.ok(passed >= 44, `expected the 44+ fixture tests to run and pass, got ${passed}`);
  });
});
