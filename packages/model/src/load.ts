/** `loadCheckpoint(dir)`: a trainer checkpoint with its BpeTokenizer. */
import { type LoadedCheckpoint, loadCheckpointWith } from './checkpoint';
import { BpeTokenizer } from './tokenizer';

export function loadCheckpoint(dir: string): LoadedCheckpoint<BpeTokenizer> {
  return loadCheckpointWith(dir, BpeTokenizer.fromJSON);
}
