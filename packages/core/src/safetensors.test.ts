import { mkdtempSync, readFileSync, truncateSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError, SafetensorsReader, writeSafetensors } from './index';

const dir = mkdtempSync(path.join(os.tmpdir(), 'st-'));

function sample(file: string) {
  const a = Float32Array.from({ length: 6 }, (_, i) => i * 0.5 - 1);
  const ids = Int32Array.from([7, -3, 2 ** 30]);
  writeSafetensors(
    file,
    [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: a },
      { name: 'ids', dtype: 'I32', shape: [3], data: ids },
      {
        name: 'big',
        dtype: 'F32',
        shape: [4, 2],
        // streamed in 2 chunks of one row pair each
        data: function* () {
          for (let r = 0; r < 2; r++) yield new Uint8Array(Float32Array.from([r, r, r, r]).buffer);
        },
      },
    ],
    { format: 'pt', layer: 'memory' },
  );
  return { a, ids };
}

describe('safetensors', () => {
  it('round-trips tensors and metadata, with 8-byte aligned data', () => {
    const f = path.join(dir, 'ok.safetensors');
    const { a, ids } = sample(f);
    const r = new SafetensorsReader(f);
    expect(Array.from(r.readF32('a'))).toEqual(Array.from(a));
    expect(Array.from(new Int32Array(r.readBytes('ids').buffer))).toEqual(Array.from(ids));
    expect(Array.from(r.readF32('big'))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(r.metadata).toEqual({ format: 'pt', layer: 'memory' });
    expect(r.info('a')).toMatchObject({ dtype: 'F32', shape: [2, 3], byteLength: 24 });
    expect((r.info('a').offset - 8) % 8).toBe(0);
    const part = new Uint8Array(8);
    r.readInto('big', part, 16);
    expect(Array.from(new Float32Array(part.buffer))).toEqual([1, 1]);
    expect(() => r.info('nope')).toThrow(/no tensor 'nope'/);
    r.close();
    // no temp files left behind
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('refuses truncated files', () => {
    const f = path.join(dir, 'trunc.safetensors');
    sample(f);
    truncateSync(f, readFileSync(f).length - 3);
    expect(() => new SafetensorsReader(f)).toThrow(CheckpointError);
    expect(() => new SafetensorsReader(f)).toThrow(/truncated: data needs/);
    truncateSync(f, 5);
    expect(() => new SafetensorsReader(f)).toThrow(/not even a header length/);
  });

  it('refuses corrupt headers and layouts', () => {
    const f = path.join(dir, 'bad.safetensors');
    sample(f);
    const good = readFileSync(f);
    const hlen = Number(good.readBigUInt64LE(0));
    const header = good.subarray(8, 8 + hlen).toString();
    const put = (h: string, tail = good.subarray(8 + hlen)) => {
      const pre = Buffer.alloc(8);
      pre.writeBigUInt64LE(BigInt(Buffer.byteLength(h)));
      writeFileSync(f, Buffer.concat([pre, Buffer.from(h), tail]));
    };
    put(header.replace('{', '{{'));
    expect(() => new SafetensorsReader(f)).toThrow(/not JSON/);
    put(header.replace('"I32"', '"Q8"'));
    expect(() => new SafetensorsReader(f)).toThrow(/unknown dtype Q8/);
    put(header.replace('"shape":[3]', '"shape":[4]'));
    expect(() => new SafetensorsReader(f)).toThrow(/needs 16 bytes, offsets span 12/);
    put(header, Buffer.concat([good.subarray(8 + hlen), Buffer.from([1, 2])]));
    expect(() => new SafetensorsReader(f)).toThrow(/trailing bytes/);
    const pre = Buffer.alloc(8);
    pre.writeBigUInt64LE(10n ** 12n);
    writeFileSync(f, Buffer.concat([pre, good.subarray(8)]));
    expect(() => new SafetensorsReader(f)).toThrow(/header length/);
  });

  it('a failed write leaves the previous file intact', () => {
    const f = path.join(dir, 'keep.safetensors');
    sample(f);
    const before = readFileSync(f);
    expect(() => writeSafetensors(f, [{ name: 'x', dtype: 'F32', shape: [4], data: new Float32Array(3) }])).toThrow(
      /needs 16 bytes, got 12/,
    );
    expect(readFileSync(f).equals(before)).toBe(true);
    expect(existsSync(`${f}.tmp-${process.pid}`)).toBe(false);
    expect(() => writeSafetensors(f, [{ name: '__metadata__', dtype: 'U8', shape: [0], data: new Uint8Array(0) }])).toThrow(/reserved/);
  });
});
