import { formatLsn, historyFileName, isValidWalSegmentSize, WalError } from '@wal/protocol';
import { createWalGenerator, type WalGenerator } from '@wal/protocol/wal-format';

/** What the fake server pretends to be: version, identity, WAL and slots (spec §5). */
export interface ServerModelOptions {
  /** Major version 14..19 (default 17). Drives column types, magic and protocol 3.2 support. */
  version?: number;
  /** `server_version` as reported (default e.g. '17.2'); any text, like '15.8.1' or '17beta2'. */
  versionText?: string;
  /** Default 7710807530998405100. */
  systemId?: bigint;
  /** Default 16 MiB. */
  segmentSize?: number;
  /** Seed of the generated WAL (default 1). */
  seed?: number;
  /**
   * Timelines, oldest first (default one timeline, 1). Every timeline but the last ends at `switchAt`,
   * which is rounded up to the next record start of its WAL; the next timeline continues from there.
   * A `switchAt` on a segment boundary is kept as it is: a promotion right after an XLOG_SWITCH ends
   * the old timeline at the segment end (spec §10 item 8). The WAL bytes then pass to the next
   * timeline at its first record start at or after the boundary, so the two timelines still read as
   * one continuous WAL across the switch.
   */
  timelines?: { timeline: number; switchAt?: bigint }[];
  /** First LSN with WAL (a segment start; default segment 1). */
  originLsn?: bigint;
  /** The server's flush position on the current timeline (default: origin + 3.5 segments). */
  flushLsn?: bigint;
  /**
   * The xlogpos IDENTIFY_SYSTEM reports (default: the flush position). Lower values model a busy
   * server whose WAL grew between IDENTIFY_SYSTEM and START_REPLICATION, so a client that starts at
   * the reported position still gets several segments. 'first-segment': 0x90 bytes into the first
   * segment of WAL (where pg_receivewal with an empty directory then starts).
   */
  reportedLsn?: bigint | 'first-segment';
  /** Segments before this LSN are "removed": START_REPLICATION below it fails with 58P01. */
  removedBefore?: bigint;
  /** `SHOW data_directory_mode` (default '0700'). */
  dataDirectoryMode?: string;
  /** Physical slots that exist; `active` makes START_REPLICATION fail with 55006. */
  slots?: Record<string, { restartLsn?: bigint; active?: boolean }>;
  /** Extra or replaced ParameterStatus values. */
  parameters?: Record<string, string>;
}

export interface TimelineInfo {
  timeline: number;
  generator: WalGenerator;
  /** Where this timeline ends (the next one's switch point); undefined for the current one. */
  endLsn: bigint | undefined;
  parent: number | undefined;
}

const DEFAULT_VERSION_TEXT: Record<number, string> = {
  14: '14.15',
  15: '15.10',
  16: '16.6',
  17: '17.2',
  18: '18.1',
  19: '19beta1',
};

/** The server's state for one connection; scenarios may build several (a system id that changes). */
export class ServerModel {
  readonly version: number;
  readonly versionText: string;
  readonly systemId: bigint;
  readonly segmentSize: number;
  readonly dataDirectoryMode: string;
  readonly timelines: TimelineInfo[];
  readonly flushLsn: bigint;
  readonly reportedLsn: bigint;
  readonly removedBefore: bigint | undefined;
  readonly slots: Map<string, { restartLsn: bigint | undefined; active: boolean }>;
  readonly parameters: Record<string, string>;

  constructor(options: ServerModelOptions = {}) {
    this.version = options.version ?? 17;
    if (!Number.isInteger(this.version) || this.version < 14 || this.version > 19) {
      throw new WalError(
        'WAL_ERR_FAKE_OPTIONS',
        `Server version must be a major from 14 to 19, got ${options.version}.`,
      );
    }
    this.versionText = options.versionText ?? DEFAULT_VERSION_TEXT[this.version]!;
    this.systemId = options.systemId ?? 7710807530998405100n;
    this.segmentSize = options.segmentSize ?? 16 * 1024 * 1024;
    if (!isValidWalSegmentSize(this.segmentSize)) {
      throw new WalError('WAL_ERR_FAKE_OPTIONS', `Invalid WAL segment size ${this.segmentSize}.`);
    }
    this.dataDirectoryMode = options.dataDirectoryMode ?? '0700';
    const segment = BigInt(this.segmentSize);
    const originLsn = options.originLsn ?? segment;
    this.timelines = buildTimelines(options.timelines ?? [{ timeline: 1 }], {
      seed: options.seed ?? 1,
      segmentSize: this.segmentSize,
      systemId: this.systemId,
      serverVersion: this.version,
      originLsn,
    });
    this.flushLsn = options.flushLsn ?? originLsn + segment * 3n + segment / 2n;
    this.reportedLsn =
      options.reportedLsn === 'first-segment' ? originLsn + 0x90n : (options.reportedLsn ?? this.flushLsn);
    this.removedBefore = options.removedBefore;
    this.slots = new Map(
      Object.entries(options.slots ?? {}).map(([name, slot]) => [
        name,
        { restartLsn: slot.restartLsn, active: slot.active ?? false },
      ]),
    );
    this.parameters = {
      ...defaultParameters(this.version, this.versionText),
      ...options.parameters,
    };
  }

  /** The current (newest) timeline. */
  get currentTimeline(): TimelineInfo {
    return this.timelines.at(-1)!;
  }

  timeline(timeline: number): TimelineInfo | undefined {
    return this.timelines.find((info) => info.timeline === timeline);
  }

  /** The WAL end a START_REPLICATION on `timeline` streams to: its switch point, or the flush position. */
  endOf(info: TimelineInfo): bigint {
    return info.endLsn ?? this.flushLsn;
  }

  /** The timeline an LSN belongs to in the current history (`tliOfPointInHistory`). */
  timelineOfLsn(lsn: bigint): number {
    for (const info of this.timelines) {
      if (info.endLsn === undefined || lsn < info.endLsn) return info.timeline;
    }
    return this.currentTimeline.timeline;
  }

  /** `%08X.history` content of a timeline: one line per ancestor (`timeline.c` writeTimeLineHistory). */
  historyFile(timeline: number): { fileName: string; content: Buffer } | undefined {
    const index = this.timelines.findIndex((info) => info.timeline === timeline);
    if (index <= 0) return undefined;
    let content = '';
    for (const info of this.timelines.slice(0, index)) {
      content += `${content === '' ? '' : '\n'}${info.timeline}\t${formatLsn(info.endLsn!)}\tno recovery target specified\n`;
    }
    return { fileName: historyFileName(timeline), content: Buffer.from(content) };
  }
}

/** Each timeline's generator, the later ones branching from the earlier at their switch points. */
function buildTimelines(
  specs: NonNullable<ServerModelOptions['timelines']>,
  common: { seed: number; segmentSize: number; systemId: bigint; serverVersion: number; originLsn: bigint },
): TimelineInfo[] {
  const segment = BigInt(common.segmentSize);
  const timelines: TimelineInfo[] = [];
  let previous: TimelineInfo | undefined;
  for (const [position, spec] of specs.entries()) {
    const generator: WalGenerator = createWalGenerator({
      ...common,
      timeline: spec.timeline,
      ...(previous === undefined
        ? {}
        : {
            parent: {
              generator: previous.generator,
              switchLsn: previous.generator.recordStartAtOrAfter(previous.endLsn!),
            },
          }),
    });
    const isLast = position === specs.length - 1;
    if (!isLast && spec.switchAt === undefined) {
      throw new WalError(
        'WAL_ERR_FAKE_OPTIONS',
        `Timeline ${spec.timeline} is not the last one and needs switchAt.`,
      );
    }
    const info: TimelineInfo = {
      timeline: spec.timeline,
      generator,
      endLsn: isLast
        ? undefined
        : spec.switchAt! % segment === 0n
          ? spec.switchAt!
          : generator.recordStartAtOrAfter(spec.switchAt!),
      parent: previous?.timeline,
    };
    timelines.push(info);
    previous = info;
  }
  return timelines;
}

/** The ParameterStatus values a PostgreSQL server of `version` reports after startup. */
function defaultParameters(version: number, versionText: string): Record<string, string> {
  return {
    application_name: '',
    client_encoding: 'UTF8',
    DateStyle: 'ISO, MDY',
    default_transaction_read_only: 'off',
    in_hot_standby: 'off',
    integer_datetimes: 'on',
    IntervalStyle: 'postgres',
    is_superuser: 'on',
    server_encoding: 'UTF8',
    server_version: versionText,
    session_authorization: 'postgres',
    standard_conforming_strings: 'on',
    TimeZone: 'UTC',
    ...(version >= 18 ? { search_path: '"$user", public' } : {}),
  };
}
