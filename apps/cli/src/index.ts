export {
  type CompressionMethod,
  type CompressionSpecification,
  parseCompressionSpecification,
} from './compression-spec.js';
export { FALLBACK_APPLICATION_NAME, replicationConnectionParameters } from './connection-parameters.js';
export { CommandLineError, UnknownOptionError } from './errors.js';
export { getoptLong, type LongOption, type ParsedCommandLine, type ParsedItem } from './getopt.js';
export { Logger, type LoggerOptions, type LogLevel } from './log.js';
export { receiveHelpText, receiveVersionText } from './receive-help.js';
export { type ReceiveMainIo, receiveMain } from './receive-main.js';
export {
  parseReceiveCommandLine,
  type ReceiveCommandLine,
  type ReceiveOptions,
} from './receive-options.js';
export { type ReceiveEnvironment, runReceive } from './receive-run.js';
export { reportError, suggestionFor } from './report-error.js';
