import { errorFields } from '../commands.js';
import { commonServer, type ScenarioFactory } from './scenario.js';

/** error-58P01: START_REPLICATION enters COPY, then `requested WAL segment … has already been removed` (spec A.4). */
export const error58P01: ScenarioFactory = (parameters) => ({
  name: 'error-58P01',
  description:
    'W CopyBothResponse, then E 58P01 "requested WAL segment ... has already been removed", then Z',
  server: { ...commonServer(parameters), removedBefore: 0xffffffffffffffffn },
  run: (session) => session.serveDefault(),
});

function slotError(code: '55006' | '42704'): ScenarioFactory {
  return (parameters) => ({
    name: `error-${code}`,
    description:
      code === '55006'
        ? 'START_REPLICATION fails before COPY: replication slot "<slot>" is active for PID 4242'
        : 'START_REPLICATION fails before COPY: replication slot "<slot>" does not exist',
    server: commonServer(parameters),
    run: (session) =>
      session.serveDefault({
        async onQuery(_sql, command) {
          // The slot in use exists: READ_REPLICATION_SLOT reports it as a physical slot (no restart LSN).
          if (
            code === '55006' &&
            command.kind === 'READ_REPLICATION_SLOT' &&
            !session.model.slots.has(command.slot)
          ) {
            session.model.slots.set(command.slot, { restartLsn: undefined, active: true });
          }
          if (command.kind !== 'START_REPLICATION') return false;
          const slot = command.slot ?? parameters.slot ?? 'wal_slot';
          await session.error(
            code === '55006'
              ? errorFields('55006', `replication slot "${slot}" is active for PID 4242`)
              : errorFields('42704', `replication slot "${slot}" does not exist`),
          );
          return true;
        },
      }),
  });
}

/** error-55006: the slot is in use by another walsender (retryable for a receiver). */
export const error55006 = slotError('55006');

/** error-42704: the slot does not exist. */
export const error42704 = slotError('42704');

/** error-28P01: asks for a cleartext password and refuses whatever comes: FATAL 28P01, close. */
export const error28P01: ScenarioFactory = (parameters) => ({
  name: 'error-28P01',
  description: 'password requested, then FATAL 28P01 password authentication failed, whatever the password',
  server: commonServer(parameters),
  async run(session) {
    const startup = await session.acceptStartup();
    session.connection.authentication = 'password';
    await session.send({ type: 'AuthenticationCleartextPassword' });
    await session.expect('PasswordMessage');
    await session.fatal(
      errorFields('28P01', `password authentication failed for user "${startup.parameters.user ?? ''}"`, {
        severity: 'FATAL',
      }),
    );
  },
});
