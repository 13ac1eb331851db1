import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { FrontendMessageCode } from '../message-codes.js';

/** 'p' after AuthenticationSASL: `mechanism\0, Int32 length (-1 = none), client-first-message`. */
export interface SASLInitialResponse {
  type: 'SASLInitialResponse';
  mechanism: string;
  data: Buffer | null;
}

export function encodeSASLInitialResponse(message: Omit<SASLInitialResponse, 'type'>): Buffer {
  const writer = new MessageWriter(64 + (message.data?.length ?? 0));
  writer.cstring(message.mechanism);
  if (message.data === null) writer.int32(-1);
  else writer.int32(message.data.length).bytes(message.data);
  return writer.finish(FrontendMessageCode.SASLInitialResponse);
}

export function decodeSASLInitialResponse(payload: Buffer): SASLInitialResponse {
  const reader = new MessageReader(payload, 'SASLInitialResponse');
  const mechanism = reader.cstring('the mechanism name');
  const length = reader.int32('the data length');
  let data: Buffer | null = null;
  if (length === -1) data = null;
  else if (length < 0) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `SASLInitialResponse has an invalid data length ${length}`,
    );
  } else data = reader.bytes(length, 'the initial response');
  reader.end();
  return { type: 'SASLInitialResponse', mechanism, data };
}
