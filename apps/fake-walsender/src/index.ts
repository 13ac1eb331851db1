/**
 * `@wal/fake-walsender`: the server side of PostgreSQL physical replication, scriptable, for tests.
 * Built on `@wal/protocol` only. See README.md.
 */
export { type AuthOptions, md5PasswordResponse, ScramExchange } from './auth.js';
export { createSelfSignedCertificate, type SelfSignedCertificate } from './certificate.js';
export { errorFields, parseReplicationCommand, type ReplicationCommand, TypeOid } from './commands.js';
export {
  type ClientMessage,
  ScriptError,
  ScriptTimeoutError,
  SessionClosedError,
  type UndecodableMessage,
} from './connection.js';
export { ServerModel, type ServerModelOptions, type TimelineInfo } from './model.js';
export {
  getScenario,
  type Scenario,
  type ScenarioFactory,
  scenarioNames,
  scenarios,
} from './scenarios/index.js';
export {
  type AnswerOutcome,
  formatLsnPadded,
  MAX_SEND_SIZE,
  neverAnswering,
  type Script,
  type ServeHooks,
  Session,
  type StreamRequest,
} from './script.js';
export { createFakeWalsender, type FakeWalsender, type FakeWalsenderOptions } from './server.js';
