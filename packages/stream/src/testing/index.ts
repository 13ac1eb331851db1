export {
  FakeConnection,
  FakeReplicationStream,
  ManualClock,
  type SentMessage,
  type StartReplicationAnswer,
  type StartReplicationRequest,
} from './fake-connection.js';
export { AtOnceMemorySink, MemorySink, type RecordedWrite } from './memory-sink.js';
