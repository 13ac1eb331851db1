export {
  type CompressionMethod,
  type CompressionSpecification,
  currentCompressionRuntime,
  parseCompressionSpecification,
} from './compression-spec.js';
export { FALLBACK_APPLICATION_NAME, replicationConnectionParameters } from './connection-parameters.js';
export { CommandLineError, UnknownOptionError } from './errors.js';
export { getoptLong, type LongOption, type ParsedCommandLine, type ParsedItem } from './getopt.js';
export { Logger, type LoggerOptions, type LogLevel } from './log.js';
export { type ReceiveEnvironment, type ReceiveMainIo, receiveMain, runReceive } from './receive.js';
export { receiveHelpText, receiveVersionText } from './receive-help.js';
export {
  parseReceiveCommandLine,
  type ReceiveCommandLine,
  type ReceiveOptions,
} from './receive-options.js';
export { type ReportContext, reportError, suggestionFor } from './report-error.js';
