import { parseWalFileName, segmentStartLsn } from '@wal/protocol';
import type { StoredObject, UploadStore } from './store.js';

interface StoredSegment {
  name: string;
  timeline: number;
  segmentNumber: bigint;
  partial: boolean;
}

/**
 * What the store holds under the prefix, listed once when the sink starts and kept up to date by
 * the uploader (its only writer): the resume point when the spool is empty, the objects a restart
 * need not upload again (same size and MD5), and the `.partial` objects to delete once their
 * segment is complete in the store.
 */
export class StoreIndex {
  readonly #objects = new Map<string, StoredObject>();
  readonly #segmentSize: number;

  private constructor(segmentSize: number) {
    this.#segmentSize = segmentSize;
  }

  static async load(store: UploadStore, segmentSize: number): Promise<StoreIndex> {
    const index = new StoreIndex(segmentSize);
    for await (const object of store.list()) index.#objects.set(object.name, object);
    return index;
  }

  get(name: string): StoredObject | undefined {
    return this.#objects.get(name);
  }

  has(name: string): boolean {
    return this.#objects.has(name);
  }

  stored(name: string, size: number, etag?: string): void {
    this.#objects.set(name, { name, size, etag });
  }

  deleted(name: string): void {
    this.#objects.delete(name);
  }

  /**
   * pg_receivewal's FindStreamingStart over the store: the newest segment object by number, then
   * timeline, a complete one before a `.partial`; an uncompressed complete one only at full size.
   * Resume at the next segment after a complete one, at the start of a partial one.
   */
  resumePoint(): { lsn: bigint; timeline: number } | undefined {
    let newest: StoredSegment | undefined;
    for (const segment of this.#segments()) {
      if (segment.segmentNumber === 0n) continue;
      if (newest === undefined || isNewer(segment, newest)) newest = segment;
    }
    if (newest === undefined) return undefined;
    const segmentNumber = newest.partial ? newest.segmentNumber : newest.segmentNumber + 1n;
    return { lsn: segmentStartLsn(segmentNumber, this.#segmentSize), timeline: newest.timeline };
  }

  /** `.partial` objects of a segment (any compression) on a timeline. */
  partialsOf(timeline: number, segmentNumber: bigint): string[] {
    const names: string[] = [];
    for (const segment of this.#segments()) {
      if (segment.partial && segment.timeline === timeline && segment.segmentNumber === segmentNumber)
        names.push(segment.name);
    }
    return names;
  }

  /** `.partial` objects whose segment is complete in the store too: left by a run killed in between. */
  stalePartials(): string[] {
    const complete = new Set<string>();
    const partials: StoredSegment[] = [];
    for (const segment of this.#segments()) {
      if (segment.partial) partials.push(segment);
      else complete.add(`${segment.timeline}/${segment.segmentNumber}`);
    }
    return partials
      .filter((segment) => complete.has(`${segment.timeline}/${segment.segmentNumber}`))
      .map((segment) => segment.name);
  }

  *#segments(): Generator<StoredSegment> {
    for (const object of this.#objects.values()) {
      const parsed = parseWalFileName(object.name, this.#segmentSize);
      if (parsed === undefined) continue;
      if (!parsed.partial && parsed.compression === 'none' && object.size !== this.#segmentSize) continue;
      yield { name: object.name, ...parsed };
    }
  }
}

function isNewer(left: StoredSegment, right: StoredSegment): boolean {
  if (left.segmentNumber !== right.segmentNumber) return left.segmentNumber > right.segmentNumber;
  if (left.timeline !== right.timeline) return left.timeline > right.timeline;
  return !left.partial && right.partial;
}
