import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { afterAll, describe, expect, it } from 'vitest';
import {
  countLz4BlockOutput,
  countLz4Frames,
  decodeLz4Block,
  LZ4_FRAME_MAGIC,
  Lz4FrameEncoder,
  lz4FrameHeader,
  type ReadAt,
  readLz4Prefix,
} from './lz4-frame.js';
import { xxhash32 } from './xxhash32.js';

const lz4Tool = (() => {
  try {
    execFileSync('lz4', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function sample(length: number, seed = 1): Buffer {
  const data = Buffer.alloc(length);
  let state = seed;
  for (let index = 0; index < length; index += 1) {
    // Half runs of a repeating pattern, half pseudo-random: both block kinds appear.
    if ((index >> 12) % 2 === 0) {
      data[index] = index % 7;
    } else {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      data[index] = state >>> 24;
    }
  }
  return data;
}

async function encode(parts: Buffer[], options: { contentChecksum?: boolean; flushAfter?: number[] } = {}) {
  const output: Buffer[] = [];
  const encoder = new Lz4FrameEncoder(
    async (chunks) => {
      for (const chunk of chunks) output.push(Buffer.from(chunk));
    },
    { contentChecksum: options.contentChecksum ?? false },
  );
  for (const [index, part] of parts.entries()) {
    await encoder.write(part);
    if (options.flushAfter?.includes(index)) await encoder.flush();
  }
  await encoder.end();
  return Buffer.concat(output);
}

function readerOfBuffer(data: Buffer): ReadAt {
  return async (target, position) => {
    if (position >= data.length) return 0;
    return data.copy(target, 0, position, Math.min(data.length, position + target.length));
  };
}

const directory = mkdtempSync(join(tmpdir(), 'lz4-frame-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('Lz4FrameEncoder', () => {
  it('writes the frame header with a valid header checksum', () => {
    const header = lz4FrameHeader({ contentChecksum: false });
    expect(header.readUInt32LE(0)).toBe(LZ4_FRAME_MAGIC);
    expect(header[4]).toBe(0x60);
    expect(header[5]).toBe(0x40);
    expect(header[6]).toBe((xxhash32(header.subarray(4, 6)) >>> 8) & 0xff);
  });

  it.each([
    ['one small write', [sample(100)]],
    ['exactly one block', [sample(65536)]],
    [
      'many odd-sized writes across blocks',
      [sample(1), sample(70000, 2), sample(65535, 3), sample(131073, 4)],
    ],
    ['nothing', []],
  ])('produces a frame lz4-napi decodes to the exact bytes: %s', async (_name, parts) => {
    const frame = await encode(parts);
    expect(decompressFrameSync(frame).equals(Buffer.concat(parts))).toBe(true);
  });

  it('keeps the frame decodable across sync flushes (partial blocks)', async () => {
    const parts = [sample(1000), sample(5000, 2), sample(100000, 3)];
    const frame = await encode(parts, { flushAfter: [0, 1] });
    expect(decompressFrameSync(frame).equals(Buffer.concat(parts))).toBe(true);
  });

  it('stores incompressible blocks uncompressed (high bit of the block size)', async () => {
    const random = Buffer.alloc(65536);
    let state = 7;
    for (let index = 0; index < random.length; index += 1) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      random[index] = state >>> 24;
    }
    const frame = await encode([random]);
    expect(frame.readUInt32LE(7) >>> 31).toBe(1);
    expect(decompressFrameSync(frame).equals(random)).toBe(true);
  });

  it.runIf(lz4Tool)('is accepted by the lz4 command-line tool, content checksum included', async () => {
    const data = sample(300000);
    for (const contentChecksum of [false, true]) {
      const path = join(directory, `tool-${contentChecksum}.lz4`);
      writeFileSync(path, await encode([data], { contentChecksum }));
      execFileSync('lz4', ['-t', path], { stdio: 'pipe' });
      const decoded = execFileSync('lz4', ['-d', '-c', path], { maxBuffer: 1 << 24 });
      expect(decoded.equals(data)).toBe(true);
    }
  });
});

describe('countLz4Frames', () => {
  it('counts frames written by lz4-napi (linked and independent blocks) and by us', async () => {
    const data = sample(200000);
    for (const frame of [compressFrameSync(data), await encode([data])]) {
      const result = await countLz4Frames(readerOfBuffer(frame), 1 << 30);
      expect(result).toEqual({ uncompressedSize: data.length, complete: true });
    }
  });

  it.runIf(lz4Tool)('counts a frame of the lz4 tool (linked blocks, content checksum)', async () => {
    const data = sample(500000);
    const path = join(directory, 'from-tool.bin');
    writeFileSync(path, data);
    const frame = execFileSync('lz4', ['-c', '-BD', path], { maxBuffer: 1 << 24 });
    expect(await countLz4Frames(readerOfBuffer(frame), 1 << 30)).toEqual({
      uncompressedSize: data.length,
      complete: true,
    });
  });

  it('counts concatenated frames and skips skippable frames', async () => {
    const first = await encode([sample(1000)]);
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const second = await encode([sample(2000, 2)]);
    const result = await countLz4Frames(readerOfBuffer(Buffer.concat([first, skippable, second])), 1 << 30);
    expect(result).toEqual({ uncompressedSize: 3000, complete: true });
  });

  it('stops once above the limit, and reports a cut frame as incomplete', async () => {
    const frame = await encode([sample(300000)]);
    const stopped = await countLz4Frames(readerOfBuffer(frame), 100000);
    expect(stopped.complete).toBe(false);
    expect(stopped.uncompressedSize).toBeGreaterThan(100000);
    const cut = await countLz4Frames(readerOfBuffer(frame.subarray(0, frame.length - 10)), 1 << 30);
    expect(cut.complete).toBe(false);
    expect(cut.error).toBeUndefined();
  });

  it('reports damaged frames', async () => {
    const frame = await encode([sample(1000)]);
    const badMagic = Buffer.from(frame);
    badMagic[0] = 0;
    expect((await countLz4Frames(readerOfBuffer(badMagic), 1 << 30)).error).toMatch(/unknown frame magic/);
    const badChecksum = Buffer.from(frame);
    badChecksum[6] = (badChecksum[6]! + 1) & 0xff;
    expect((await countLz4Frames(readerOfBuffer(badChecksum), 1 << 30)).error).toMatch(/header checksum/);
    expect((await countLz4Frames(readerOfBuffer(Buffer.alloc(0)), 1 << 30)).complete).toBe(false);
  });
});

describe('LZ4 block walking', () => {
  it('rejects a match before the start of the output', () => {
    // token: 1 literal, match length 4; offset 5 > 1 byte produced
    expect(countLz4BlockOutput(Buffer.from([0x10, 0x41, 0x05, 0x00]), 0, 65536)).toMatch(
      /invalid match offset/,
    );
    expect(countLz4BlockOutput(Buffer.from([0xf0]), 0, 65536)).toMatch(/literal length runs past/);
    expect(countLz4BlockOutput(Buffer.from([0x30, 1]), 0, 65536)).toMatch(/literals run past/);
  });

  it('reads lengths continued over several extension bytes (255, then less)', () => {
    // 15 + 255 + 30 = 300 literals, the block's last sequence
    const literals = Buffer.alloc(300, 0x61);
    const block = Buffer.concat([Buffer.from([0xf0, 255, 30]), literals]);
    expect(countLz4BlockOutput(block, 0, 65536)).toBe(300);
    expect(decodeLz4Block(block, 1000)?.equals(literals)).toBe(true);
    // 1 literal, then a match of 4 + 15 + 255 + 1 = 275 bytes at offset 1
    const run = Buffer.from([0x1f, 0x61, 0x01, 0x00, 255, 1, 0x00]);
    expect(countLz4BlockOutput(run, 0, 65536)).toBe(276);
    expect(decodeLz4Block(run, 1000)?.equals(Buffer.alloc(276, 0x61))).toBe(true);
    // The extension ends with 255 at the end of the block: its next byte is missing.
    expect(countLz4BlockOutput(Buffer.from([0xf0, 255, 255]), 0, 65536)).toMatch(/literal length runs past/);
    expect(countLz4BlockOutput(Buffer.from([0x1f, 0x61, 0x01, 0x00, 255]), 0, 65536)).toMatch(
      /match length runs past/,
    );
    expect(decodeLz4Block(Buffer.from([0xf0, 255]), 1000)).toBeUndefined();
  });

  it('decodes overlapping matches (a repeated pattern)', () => {
    // 2 literals "ab", then a match of 6 at offset 2, then last literals "c"
    const block = Buffer.from([0x22, 0x61, 0x62, 0x02, 0x00, 0x10, 0x63]);
    expect(decodeLz4Block(block, 100)?.toString()).toBe('ababababc');
    expect(countLz4BlockOutput(block, 0, 65536)).toBe(9);
  });

  it('reads the first bytes of a frame without decoding it all', async () => {
    const data = sample(200000);
    for (const frame of [compressFrameSync(data), await encode([data])]) {
      expect((await readLz4Prefix(readerOfBuffer(frame), 40))?.equals(data.subarray(0, 40))).toBe(true);
    }
    expect(await readLz4Prefix(readerOfBuffer(Buffer.from('not a frame at all')), 40)).toBeUndefined();
  });
});
