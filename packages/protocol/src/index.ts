export { ProtocolError, WalError } from './errors.js';
