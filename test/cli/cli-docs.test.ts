/**
 * docs/cli.md is generated from the commands' option tables so the reference cannot drift from --help.
 * A stale file fails this test; `UPDATE_DOCS=1 node scripts/run-tests.mjs cli-docs` rewrites it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands/index.js';

const DOC = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'docs', 'cli.md');

function render(): string {
  const out = [
    '# CLI reference: `modernbert`',
    '',
    '<!-- Generated from src/cli/commands/*.ts by test/cli/cli-docs.test.ts (UPDATE_DOCS=1). Do not edit by hand. -->',
    '',
    'Every command prints `--help`. Errors go to stderr as `modernbert: error: …` with exit code 1; a bad',
    'option value or unknown option exits with 2. Inputs come from the arguments, else `--input FILE`',
    '(`.jsonl`: one JSON string or `{"text": …}` per line; any other file: one text per line; `-` = stdin),',
    'else stdin when it is piped. Model commands take `--model` (a folder or a Hub repo id); without it the',
    'installed default model is used (see src/hub/default-model.ts).',
    '',
  ];
  for (const c of COMMANDS) {
    out.push(`## \`modernbert ${c.name}${c.args ? ` ${c.args}` : ''}\``, '', `${c.description[0].toUpperCase()}${c.description.slice(1)}.`, '');
    out.push('| option | description | default |', '| --- | --- | --- |');
    for (const o of c.options) out.push(`| \`${o.flags}\` | ${o.description.replaceAll('|', '\\|')} | ${o.default === undefined ? '' : `\`${o.default}\``} |`);
    if (c.examplesNotTested) out.push('', `<!-- not-tested: ${c.examplesNotTested} -->`);
    if (c.examples) out.push('', '```sh', ...c.examples.map((e) => `$ ${e}`), '```');
    out.push('');
  }
  return out.join('\n');
}

it('docs/cli.md matches the option tables', () => {
  const want = render();
  if (process.env.UPDATE_DOCS === '1') writeFileSync(DOC, want);
  assert.ok(existsSync(DOC), 'docs/cli.md is missing: run UPDATE_DOCS=1 node scripts/run-tests.mjs cli-docs');
  assert.equal(readFileSync(DOC, 'utf8'), want, 'docs/cli.md is stale: run UPDATE_DOCS=1 node scripts/run-tests.mjs cli-docs');
});
