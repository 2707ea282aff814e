#!/usr/bin/env node
/**
 * The `modernbert` command line: a thin commander layer over the library. Each command lives in
 * commands/<name>.ts with its option table; this file only registers them and turns errors into
 * messages and exit codes (1 for a failed command, 2 for bad usage).
 */
import { Command, CommanderError, Option } from 'commander';
import { ModernBertError } from '../errors.js';
import { COMMANDS } from './commands/index.js';

function buildProgram(): Command {
  const program = new Command('modernbert')
    .description('ModernBERT on the CPU: fill masks, embed, classify, tag and rerank texts; build indexes, search and evaluate retrieval; download models')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  for (const spec of COMMANDS) {
    // A two-word name ('index build') is a subcommand of its first word's command, created on first use.
    const [first, sub] = spec.name.split(' ');
    const parent = sub === undefined ? program
      : (program.commands.find((c) => c.name() === first) ?? program.command(first).description(`${first} commands (see \`modernbert ${first} --help\`)`).exitOverride());
    const name = sub ?? first;
    const cmd = parent.command(spec.args ? `${name} ${spec.args}` : name).description(spec.description).exitOverride();
    for (const o of spec.options) {
      const opt = new Option(o.flags, o.description);
      if (o.default !== undefined) opt.default(o.default);
      if (o.parse) opt.argParser(o.parse);
      cmd.addOption(opt);
    }
    if (spec.examples) cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join('\n')}`);
    cmd.action(async (...params: unknown[]) => {
      const args = params.slice(0, -2).flatMap((a) => (a === undefined ? [] : Array.isArray(a) ? a : [a])) as string[];
      await spec.run(args, (params[params.length - 1] as Command).opts());
    });
  }
  return program;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed help or the usage error
    const err = e as Error;
    // Library errors (bad input, missing model) are the user's to fix: the message alone. Anything else is a bug: the stack.
    process.stderr.write(`modernbert: error: ${e instanceof ModernBertError ? err.message : (err.stack ?? String(e))}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
