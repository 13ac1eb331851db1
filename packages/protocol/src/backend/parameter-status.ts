import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/** 'S': a run-time parameter's current value (server_version, integer_datetimes, ...). */
export interface ParameterStatus {
  type: 'ParameterStatus';
  name: string;
  value: string;
}

export function decodeParameterStatus(payload: Buffer): ParameterStatus {
  const reader = new MessageReader(payload, 'ParameterStatus');
  const name = reader.cstring('the parameter name');
  const value = reader.cstring('the parameter value');
  reader.end();
  return { type: 'ParameterStatus', name, value };
}

export function encodeParameterStatus(message: Omit<ParameterStatus, 'type'>): Buffer {
  return new MessageWriter(64)
    .cstring(message.name)
    .cstring(message.value)
    .finish(BackendMessageCode.ParameterStatus);
}
