/** `loadCheckpoint(dir)`: a trainer checkpoint with its BpeTokenizer. */
import { type LoadOptions, type LoadedCheckpoint, loadCheckpointWith } from './checkpoint';
import { BpeTokenizer } from './tokenizer';

export function loadCheckpoint(dir: string, opts: LoadOptions = {}): LoadedCheckpoint<BpeTokenizer> {
  return loadCheckpointWith(dir, BpeTokenizer.fromJSON, opts);
}
