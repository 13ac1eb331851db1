import { MessageWriter } from '../io/writer.js';
import { FrontendMessageCode } from '../message-codes.js';

/** 'p' after AuthenticationSASLContinue: the mechanism's next message (SCRAM client-final-message). */
export interface SASLResponse {
  type: 'SASLResponse';
  data: Buffer;
}

export function encodeSASLResponse(message: Omit<SASLResponse, 'type'>): Buffer {
  return new MessageWriter(message.data.length + 5)
    .bytes(message.data)
    .finish(FrontendMessageCode.SASLResponse);
}

export function decodeSASLResponse(payload: Buffer): SASLResponse {
  return { type: 'SASLResponse', data: payload };
}
