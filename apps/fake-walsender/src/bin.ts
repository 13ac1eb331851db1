#!/usr/bin/env node
import { parseArgs } from 'node:util';
import type { AuthOptions } from './auth.js';
import { getScenario, scenarioNames } from './scenarios/index.js';
import { createFakeWalsender } from './server.js';

const usage = `Usage: fake-walsender --scenario NAME [--port N] [--host H] [--param KEY=VALUE]...
       [--tls] [--auth trust|password|md5|scram-sha-256 --password SECRET [--iterations N]]
       fake-walsender --list

Starts a fake walsender, prints "fake-walsender listening on HOST:PORT scenario=NAME" on one line,
and runs until SIGINT or SIGTERM. Scenarios: ${scenarioNames.join(', ')}.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'happy' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      param: { type: 'string', multiple: true, default: [] },
      tls: { type: 'boolean', default: false },
      auth: { type: 'string', default: 'trust' },
      password: { type: 'string' },
      iterations: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  if (values.list) {
    for (const name of scenarioNames) {
      const scenario = name === 'malformed' ? undefined : getScenario(name);
      process.stdout.write(
        `${name}\t${scenario?.description ?? 'any malformed-* scenario via --param variant=NAME'}\n`,
      );
    }
    return;
  }
  const parameters: Record<string, string> = {};
  for (const entry of values.param) {
    const equals = entry.indexOf('=');
    if (equals <= 0) throw new Error(`--param expects KEY=VALUE, got "${entry}"`);
    parameters[entry.slice(0, equals)] = entry.slice(equals + 1);
  }
  const method = values.auth as AuthOptions['method'];
  if (!['trust', 'password', 'md5', 'scram-sha-256'].includes(method)) {
    throw new Error(`--auth must be trust, password, md5 or scram-sha-256, got "${values.auth}"`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0..65535, got "${values.port}"`);
  const auth: AuthOptions = { method };
  if (values.password !== undefined) auth.password = values.password;
  if (values.iterations !== undefined) auth.iterations = Number(values.iterations);
  const server = await createFakeWalsender({
    scenario: values.scenario,
    parameters,
    host: values.host,
    port,
    tls: values.tls,
    ...(method === 'trust' ? {} : { auth }),
  });
  process.stdout.write(
    `fake-walsender listening on ${server.host}:${server.port} scenario=${values.scenario}\n`,
  );
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`fake-walsender: ${(error as Error).message}\n${usage}\n`);
  process.exit(2);
});
