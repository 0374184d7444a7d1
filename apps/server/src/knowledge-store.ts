/**
 * A knowledge base on disk for one checkpoint: the lmdb + usearch MemoryBank of @mnemo/memory3,
 * plus `writer.json`, which names the checkpoint whose model wrote the memories.
 *
 * Memories are the K/V of one model: a store written by another checkpoint has the right shapes
 * but meaningless contents, so opening it with another checkpoint is refused (unless the caller
 * asks to read it anyway). The fingerprint is the sha256 over the checkpoint's file digests
 * (its config.json lists a sha256 per file), so retraining, or any edited weight, changes it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CheckpointError, ConfigError, writeFileAtomic } from '@mnemo/core';
import {
  type BankEvent,
  type CodecSpec,
  KnowledgeBase,
  type LmdbMemoryBank,
  bankShapeFor,
  defaultOptions,
  openMemoryBank,
} from '@mnemo/memory3';
import type { LanguageModel, TextCodec } from '@mnemo/model';

export const WRITER_FILE = 'writer.json';

interface WriterRecord {
  format: 1;
  /** sha256 over the checkpoint's files (checkpointFingerprint) */
  checkpoint: string;
  /** where it was, for the error message */
  checkpointPath: string;
  createdAt: string;
}

/** sha256 over the sorted (path, sha256) pairs a checkpoint's config.json lists. */
export function checkpointFingerprint(checkpointDir: string): string {
  const file = path.join(checkpointDir, 'config.json');
  let files: Record<string, { sha256: string }>;
  try {
    files = (JSON.parse(readFileSync(file, 'utf8')) as { files: Record<string, { sha256: string }> }).files;
  } catch (e) {
    throw new CheckpointError(file, `cannot read the checkpoint's file list (${(e as Error).message})`);
  }
  const h = createHash('sha256');
  for (const rel of Object.keys(files).sort()) h.update(`${rel}\0${files[rel]!.sha256}\n`);
  return h.digest('hex');
}

export interface OpenKnowledgeOptions {
  /** the checkpoint the model was loaded from (its fingerprint guards the store) */
  checkpoint: string;
  model: LanguageModel;
  tokenizer: TextCodec;
  /** a new store's codec (default bf16); an existing store keeps its own */
  codec?: CodecSpec;
  /** read a store written by another checkpoint (its memories then mean little) */
  anyWriter?: boolean;
  onEvent?: (e: BankEvent) => void;
}

/** Open (or create) the knowledge base in `storeDir` for this checkpoint's model. */
export async function openKnowledgeStore(
  storeDir: string,
  o: OpenKnowledgeOptions,
): Promise<{ knowledge: KnowledgeBase; bank: LmdbMemoryBank; created: boolean }> {
  const fingerprint = checkpointFingerprint(o.checkpoint);
  const writerFile = path.join(storeDir, WRITER_FILE);
  const created = !existsSync(path.join(storeDir, 'data.mdb'));
  if (!created) {
    let writer: WriterRecord | undefined;
    try {
      writer = JSON.parse(readFileSync(writerFile, 'utf8')) as WriterRecord;
    } catch {
      writer = undefined;
    }
    if (!o.anyWriter) {
      if (!writer) {
        throw new ConfigError(
          '--memory-store',
          `${storeDir} has no ${WRITER_FILE}, so which model wrote its memories is unknown; rebuild it with mnemo-memory build, or pass --memory-store-any-writer to read it anyway`,
        );
      }
      if (writer.checkpoint !== fingerprint) {
        throw new ConfigError(
          '--memory-store',
          `${storeDir} was written by the checkpoint at ${writer.checkpointPath} (fingerprint ${writer.checkpoint.slice(0, 12)}), not by ${o.checkpoint} (${fingerprint.slice(0, 12)}); its memories are another model's K/V. Rebuild it with mnemo-memory build, or pass --memory-store-any-writer to read it anyway`,
        );
      }
    }
  }
  const options = defaultOptions(o.tokenizer);
  const bank = await openMemoryBank(storeDir, { ...bankShapeFor(o.model, options), codec: o.codec, onEvent: o.onEvent });
  if (created) {
    const rec: WriterRecord = {
      format: 1,
      checkpoint: fingerprint,
      checkpointPath: path.resolve(o.checkpoint),
      createdAt: new Date().toISOString(),
    };
    writeFileAtomic(writerFile, `${JSON.stringify(rec, null, 2)}\n`);
  }
  return { knowledge: new KnowledgeBase(o.model, o.tokenizer, bank, options), bank, created };
}

/** The texts of a JSON-lines file; refuses the file at its first bad line. */
export function readRefs(file: string, content: string): string[] {
  const texts: string[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new CheckpointError(`${file}:${i + 1}`, `not JSON (${(e as Error).message}); each line must be an object like {"text": "..."}`);
    }
    const text = (v as { text?: unknown } | null)?.text;
    if (typeof v !== 'object' || v === null || typeof text !== 'string' || text.trim() === '')
      throw new CheckpointError(`${file}:${i + 1}`, 'needs a non-empty string field "text"');
    texts.push(text);
  });
  if (texts.length === 0) throw new CheckpointError(file, 'holds no references (one JSON object per line with a "text" field)');
  return texts;
}
