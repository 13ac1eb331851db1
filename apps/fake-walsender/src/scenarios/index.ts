import { WalError } from '@wal/protocol';
import { cutAt, happy, keepaliveReply, shutdown } from './basic.js';
import { error28P01, error58P01, error42704, error55006 } from './errors.js';
import { malformed, malformedScenarios } from './malformed.js';
import type { Scenario, ScenarioFactory } from './scenario.js';
import { startAtTimelineEnd, timelineSwitch } from './timelines.js';

export type { Scenario, ScenarioFactory } from './scenario.js';

/** Every ready scenario by name. */
export const scenarios: Record<string, ScenarioFactory> = {
  happy,
  'keepalive-reply': keepaliveReply,
  'timeline-switch': timelineSwitch,
  'start-at-timeline-end': startAtTimelineEnd,
  shutdown,
  'cut-at': cutAt,
  'error-58P01': error58P01,
  'error-55006': error55006,
  'error-42704': error42704,
  'error-28P01': error28P01,
  malformed,
  ...malformedScenarios,
};

export const scenarioNames: readonly string[] = Object.keys(scenarios);

/** The scenario `name` built with `parameters`; unknown names are an error listing the known ones. */
export function getScenario(name: string, parameters: Record<string, string> = {}): Scenario {
  const factory = scenarios[name];
  if (factory === undefined) {
    throw new WalError(
      'WAL_ERR_FAKE_OPTIONS',
      `Unknown scenario "${name}"; known: ${scenarioNames.join(', ')}.`,
    );
  }
  return factory(parameters);
}
