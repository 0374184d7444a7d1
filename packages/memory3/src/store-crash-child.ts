/**
 * Child process of lmdb-bank-crash.test.ts: adds fixture memories to the bank in argv[2] without
 * end, a few writes in flight at once, and prints `ack <id> <seed>` once each add has resolved
 * (stdout to a pipe is synchronous on Linux, so a printed ack was already durable). The parent
 * kills it with SIGKILL mid-stream.
 */
import { openMemoryBank } from './lmdb-bank';
import { fixtureEntry } from './store-fixtures';

const [dir, start] = process.argv.slice(2);
const shape = { layers: 2, kvHeads: 2, tokens: 8, headDim: 16 };
const embedDim = 16;

async function main(): Promise<void> {
  const bank = await openMemoryBank(dir!, { shape, embedDim, codec: 'f32', indexSaveEvery: 25 });
  process.stdout.write('ready\n');
  let seed = Number(start ?? 1);
  const writer = async () => {
    for (;;) {
      const batch = [seed++, ...(seed % 3 === 0 ? [seed++] : [])]; // batches of 1 and 2
      const ids = await bank.add(batch.map((s) => fixtureEntry(s, shape, embedDim)));
      ids.forEach((id, i) => process.stdout.write(`ack ${id} ${batch[i]}\n`));
    }
  };
  await Promise.all([writer(), writer(), writer()]);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
