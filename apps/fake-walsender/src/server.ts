import { createServer, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { WalError } from '@wal/protocol';
import type { AuthOptions } from './auth.js';
import { createSelfSignedCertificate, type SelfSignedCertificate } from './certificate.js';
import { ClientConnection, type ClientMessage, SessionClosedError } from './connection.js';
import { ServerModel, type ServerModelOptions } from './model.js';
import { getScenario, type Scenario } from './scenarios/index.js';
import { type Script, Session } from './script.js';

export interface FakeWalsenderOptions {
  /** A ready scenario by name (see `scenarioNames`) or a Scenario object. Default 'happy'. */
  scenario?: string | Scenario;
  /** Parameters of a named scenario (e.g. `{ byte: '1000' }` for 'cut-at'). */
  parameters?: Record<string, string>;
  /** Replaces the scenario's script: runs once per connection. */
  script?: Script;
  /** Replaces or extends the scenario's server (version, sizes, timelines, slots...). */
  server?: ServerModelOptions | ServerModel;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: a free port chosen by the system. */
  port?: number;
  /** Offer TLS: true for a self-signed certificate made now, or your own PEM pair. */
  tls?: boolean | SelfSignedCertificate;
  /** Authentication (default: the scenario's, else trust). */
  auth?: AuthOptions;
  /** How long a script waits for an expected client message (default 10 s). */
  timeoutMs?: number;
}

export interface FakeWalsender {
  host: string;
  port: number;
  /** The server model connections are served from (shared: slots created by one are seen by the next). */
  model: ServerModel;
  /** Everything every client sent, in arrival order, with timestamps. */
  recorded: ClientMessage[];
  /** Script failures (unexpected client behaviour); a test usually asserts this stays empty. */
  errors: Error[];
  /** The PEM certificate when TLS is on (a client can use it as its root certificate). */
  certificate: string | undefined;
  /** Connections accepted so far. */
  readonly connectionCount: number;
  /** Resolves when `count` connections have been accepted and their scripts have finished. */
  waitForSessions(count: number): Promise<void>;
  /** Stop listening, close every connection, wait for the scripts to end. Idempotent. */
  close(): Promise<void>;
}

/** Start a fake walsender listening on `host:port` (port 0 = any free port). */
export async function createFakeWalsender(options: FakeWalsenderOptions = {}): Promise<FakeWalsender> {
  const scenario =
    typeof options.scenario === 'object'
      ? options.scenario
      : getScenario(options.scenario ?? 'happy', options.parameters ?? {});
  const model =
    options.server instanceof ServerModel
      ? options.server
      : new ServerModel({ ...scenario.server, ...(options.server ?? {}) });
  const script = options.script ?? scenario.run;
  const auth: AuthOptions = options.auth ?? scenario.auth ?? { method: 'trust' };
  let certificate: SelfSignedCertificate | undefined;
  let secureContext: SecureContext | undefined;
  if (options.tls) {
    certificate = options.tls === true ? createSelfSignedCertificate() : options.tls;
    secureContext = createSecureContext({ cert: certificate.certificate, key: certificate.privateKey });
  }
  const recorded: ClientMessage[] = [];
  const errors: Error[] = [];
  const connections = new Set<ClientConnection>();
  const sessions: Promise<void>[] = [];
  const finished: (() => void)[] = [];
  let connectionCount = 0;
  let finishedCount = 0;

  const serve = async (socket: Socket): Promise<void> => {
    socket.setNoDelay(true);
    const connection = new ClientConnection(socket, ++connectionCount, (message) => recorded.push(message));
    connections.add(connection);
    const session = new Session({
      connection,
      model,
      auth,
      secureContext,
      timeoutMs: options.timeoutMs ?? 10_000,
    });
    try {
      await script(session);
    } catch (error) {
      if (!(error instanceof SessionClosedError)) {
        errors.push(error as Error);
      }
    } finally {
      connection.end();
      connections.delete(connection);
      finishedCount++;
      for (const notify of finished.splice(0)) notify();
    }
  };

  const server = createServer((socket) => {
    sessions.push(serve(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new WalError(
          'WAL_ERR_FAKE_LISTEN',
          `The fake walsender cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${error.message}`,
          {
            cause: error,
          },
        ),
      ),
    );
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new WalError('WAL_ERR_FAKE_LISTEN', 'The fake walsender is not listening on a TCP port.');
  }
  let closing: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    model,
    recorded,
    errors,
    certificate: certificate?.certificate,
    get connectionCount() {
      return connectionCount;
    },
    async waitForSessions(count: number) {
      while (finishedCount < count) await new Promise<void>((resolve) => finished.push(resolve));
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const connection of connections) connection.destroy();
        await Promise.all(sessions);
        await stopped;
      })();
      return closing;
    },
  };
}
