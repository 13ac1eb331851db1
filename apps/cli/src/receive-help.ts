/**
 * `wal receive --help`: the options of pg_receivewal in its three groups, in our own words.
 * PostgreSQL's TAP test wants every line at most 95 characters; a unit test holds us to it.
 */
export function receiveHelpText(program = 'wal receive'): string {
  return `${program} streams the write-ahead log of a PostgreSQL server into a directory,
one segment file at a time, the way pg_receivewal does.

Usage:
  ${program} [OPTION]...

Options:
  -D, --directory=DIR    write WAL segment files to DIR (it must already exist),
                         or upload them to s3://BUCKET/PREFIX (needs --spool)
  -E, --endpos=LSN       exit once WAL past position LSN has been received
      --if-not-exists    with --create-slot, succeed if the slot already exists
  -n, --no-loop          exit with an error on connection loss instead of retrying
      --no-sync          never fsync: faster, but WAL can be lost if the machine crashes
  -s, --status-interval=SECS
                         seconds between status reports to the server (default: 10)
  -S, --slot=SLOTNAME    stream through this existing physical replication slot
      --synchronous      fsync WAL as soon as it arrives and report it flushed at once
  -v, --verbose          report progress messages (repeat for more)
  -V, --version          print the version, then exit
  -Z, --compress=METHOD[:DETAIL]
                         compress segments: none, gzip or lz4 (zstd where Node.js has it);
                         DETAIL is a level or level=N; a bare number N means gzip:N
      --json             log one JSON object per line on stderr (--log-format=json)
      --log-format=FORMAT
                         log as text (the default) or json
      --metrics-address=HOST:PORT
                         serve Prometheus metrics (/metrics), /healthz and /readyz there
      --progress         show received position, rate and lag on a terminal
      --trace[=FILE]     trace the wire protocol (passwords hidden) to stderr or FILE
      --receive-timeout=SECS
                         reconnect when the server stays silent this long
      --verify           check page headers and record checksums before writing WAL;
                         stop at the first bad record, keeping the WAL before it
      --spool=DIR        with -D s3://…: write WAL to DIR first, upload and remove it there
      --partial-upload-interval=SECS
                         with -D s3://…: upload the unfinished segment this often (default: 60)
      --upload-concurrency=N
                         with -D s3://…: upload up to N segments at once (default: 4)
      --ack=local|remote with -D s3://…: report WAL flushed once in the spool (local, the
                         default) or once in object storage (remote: the server keeps it)
  -?, --help             print this help, then exit

Connection options:
  -d, --dbname=CONNSTR   connection string or postgresql:// URI
  -h, --host=HOSTNAME    server host name or socket directory
  -p, --port=PORT        server port
  -U, --username=NAME    connect as this user
  -w, --no-password      never ask for a password
  -W, --password         ask for a password before connecting

Optional actions:
      --create-slot      create the replication slot named by --slot, then exit
      --drop-slot        drop the replication slot named by --slot, then exit

-h, -p and -U override the same settings inside -d, as they do for pg_receivewal.
Exit status: 0 at --endpos, after SIGINT/SIGTERM or a slot action; 1 on any error.
`;
}

export function receiveVersionText(version: string, program = 'wal receive'): string {
  return `${program} (wal) ${version}\n`;
}
