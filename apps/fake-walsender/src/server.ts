import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { WalError } from '@wal/protocol';
import type { AuthOptions } from './auth.js';
import { createSelfSignedCertificate, type SelfSignedCertificate } from './certificate.js';
import { ClientConnection, type ClientMessage, SessionClosedError } from './connection.js';
import { ServerModel, type ServerModelOptions } from './model.js';
import { getScenario, type Scenario } from './scenarios/index.js';
import { type Script, Session, type SessionOptions } from './script.js';

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
  const certificate =
    options.tls === true ? createSelfSignedCertificate() : options.tls === false ? undefined : options.tls;
  const sessions = new Sessions(options.script ?? scenario.run, {
    model,
    auth: options.auth ?? scenario.auth ?? { method: 'trust' },
    secureContext:
      certificate === undefined
        ? undefined
        : createSecureContext({ cert: certificate.certificate, key: certificate.privateKey }),
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  const server = createServer((socket) => sessions.serve(socket));
  const address = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    model,
    recorded: sessions.recorded,
    errors: sessions.errors,
    certificate: certificate?.certificate,
    get connectionCount() {
      return sessions.connectionCount;
    },
    waitForSessions: (count: number) => sessions.waitForFinished(count),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await sessions.closeAll();
        await stopped;
      })();
      return closing;
    },
  };
}

/** The settings every session of one server shares. */
type SessionSettings = Omit<SessionOptions, 'connection'>;

/** The connections of one server: each runs the script once, recorded, until it ends. */
class Sessions {
  readonly recorded: ClientMessage[] = [];
  readonly errors: Error[] = [];
  connectionCount = 0;
  private finishedCount = 0;
  private readonly connections = new Set<ClientConnection>();
  private readonly running: Promise<void>[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly script: Script;
  private readonly settings: SessionSettings;

  constructor(script: Script, settings: SessionSettings) {
    this.script = script;
    this.settings = settings;
  }

  serve(socket: Socket): void {
    this.running.push(this.run(socket));
  }

  private async run(socket: Socket): Promise<void> {
    socket.setNoDelay(true);
    const connection = new ClientConnection(socket, ++this.connectionCount, (message) =>
      this.recorded.push(message),
    );
    this.connections.add(connection);
    try {
      await this.script(new Session({ connection, ...this.settings }));
    } catch (error) {
      if (!(error instanceof SessionClosedError)) this.errors.push(error as Error);
    } finally {
      connection.end();
      this.connections.delete(connection);
      this.finishedCount++;
      for (const notify of this.waiting.splice(0)) notify();
    }
  }

  async waitForFinished(count: number): Promise<void> {
    while (this.finishedCount < count) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Destroys every open connection and waits for the scripts to end. */
  async closeAll(): Promise<void> {
    for (const connection of this.connections) connection.destroy();
    await Promise.all(this.running);
  }
}

async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new WalError(
          'WAL_ERR_FAKE_LISTEN',
          `The fake walsender cannot listen on ${host}:${port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new WalError('WAL_ERR_FAKE_LISTEN', 'The fake walsender is not listening on a TCP port.');
  }
  return address;
}
