import { parseLsn, WalError } from '@wal/protocol';
import type { AuthOptions } from '../auth.js';
import type { ServerModelOptions } from '../model.js';
import type { Script } from '../script.js';

/** A ready-made server behaviour: what the server is, how it authenticates, what each connection does. */
export interface Scenario {
  name: string;
  description: string;
  server?: ServerModelOptions;
  auth?: AuthOptions;
  run: Script;
}

/** Builds a scenario from string parameters (so the binary can pass `--param key=value`). */
export type ScenarioFactory = (parameters: Record<string, string>) => Scenario;

export function integerParameter(parameters: Record<string, string>, name: string, fallback: number): number {
  const text = parameters[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new WalError(
      'WAL_ERR_FAKE_OPTIONS',
      `Scenario parameter ${name} must be a non-negative integer, got "${text}".`,
    );
  }
  return value;
}

export function lsnParameter(parameters: Record<string, string>, name: string): bigint | undefined {
  const text = parameters[name];
  return text === undefined ? undefined : parseLsn(text);
}

/** The server options every scenario accepts: version, segmentSizeMb, seed, flushLsn. */
export function commonServer(parameters: Record<string, string>): ServerModelOptions {
  const segmentSize = integerParameter(parameters, 'segmentSizeMb', 16) * 1024 * 1024;
  const flushLsn = lsnParameter(parameters, 'flushLsn');
  const options: ServerModelOptions = {
    version: integerParameter(parameters, 'version', 17),
    segmentSize,
    seed: integerParameter(parameters, 'seed', 1),
  };
  if (parameters.versionText !== undefined) options.versionText = parameters.versionText;
  const reportedLsn = lsnParameter(parameters, 'reportedLsn');
  if (reportedLsn !== undefined) options.reportedLsn = reportedLsn;
  if (flushLsn !== undefined) options.flushLsn = flushLsn;
  else if (parameters.segments !== undefined) {
    // WAL from segment 1 through `segments` whole segments plus half of the next one.
    const segments = BigInt(integerParameter(parameters, 'segments', 3));
    options.flushLsn = BigInt(segmentSize) * (1n + segments) + BigInt(segmentSize / 2);
  }
  return options;
}
