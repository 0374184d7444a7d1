#!/usr/bin/env node
/**
 * mnemo-serve --checkpoint DIR [flags]: serve a trainer checkpoint over HTTP.
 *
 * Listens first (GET /healthz = 200, /readyz = 503), loads the checkpoint, then turns ready.
 * SIGTERM / SIGINT: stop accepting, finish in-flight requests (streams included), exit 0;
 * a second signal exits at once with code 130.
 */
import { MnemoError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { openKnowledgeStore } from './knowledge-store';
import { Memory3Engine } from './memory3-engine';
import { ModelEngine } from './model-engine';
import { loadShardedEngine } from './sharded-engine';
import { USAGE, parseCli } from './options';
import { MnemoServer } from './server';

async function main(): Promise<number> {
  let opts: ReturnType<typeof parseCli>;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mnemo-serve: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { checkpoint, logLevel, help: _help, warnings, memoryStore, memoryStoreAnyWriter, memoryParallel, ...serverOpts } = opts;
  const server = new MnemoServer(serverOpts, { logger: logLevel === 'silent' ? false : { level: logLevel } });
  const say = (msg: string) => process.stderr.write(`mnemo-serve: ${msg}\n`);
  for (const w of warnings) say(`warning: ${w}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      say(`second ${signal}, exiting now`);
      process.exit(130);
    }
    stopping = true;
    say(`${signal}: finishing in-flight requests, then exiting`);
    server.shutdown().then(
      () => {
        say('stopped');
        process.exit(0);
      },
      (e) => {
        say(`shutdown failed: ${(e as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const address = await server.listen();
  const backend = await initBackend();
  say(`listening on ${address}; tensor backend ${backend.name}; loading ${checkpoint}`);
  const t0 = performance.now();
  let engine =
    memoryParallel === undefined
      ? ModelEngine.load(checkpoint, { id: serverOpts.modelName })
      : await loadShardedEngine(checkpoint, memoryParallel, { id: serverOpts.modelName });
  if (memoryParallel !== undefined) say(`value pool split over ${memoryParallel} worker threads (--memory-parallel)`);
  if (memoryStore !== undefined) {
    const { knowledge, bank, created } = await openKnowledgeStore(memoryStore, {
      checkpoint,
      model: engine.model,
      tokenizer: engine.tokenizer,
      anyWriter: memoryStoreAnyWriter,
      onEvent: (e) => {
        if (e.kind === 'index-rebuilt')
          say(`memory store: index ${e.reason}, rebuilt (${e.mode}, ${e.added} vectors, ${e.ms.toFixed(0)} ms)`);
        if (e.kind === 'record-skipped') say(`memory store: record ${e.id} is corrupt and was left out of the index: ${e.error.message}`);
      },
    });
    say(`memory store ${memoryStore}: ${created ? 'created, empty (POST /v1/memories adds texts)' : `${bank.size} references`}`);
    engine = new Memory3Engine(engine.model, engine.tokenizer, engine.info.id, knowledge);
  }
  server.setEngine(engine);
  const i = engine.info;
  say(
    `model '${i.id}' loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${i.denseParams} dense + ${i.memoryParams} memory params, memory blocks [${i.memoryBlocks.join(', ')}]`,
  );
  if (engine.chatTemplateSource === 'default') {
    say(
      'the checkpoint stores no chat template (trained before mnemo-train wrote one): /v1/chat/completions uses the default ("User: …\\nAssistant: …", see README)',
    );
  }
  const auth = serverOpts.apiKey !== undefined ? ` -H "Authorization: Bearer $MNEMO_API_KEY"` : '';
  process.stdout.write(
    `mnemo-serve: ready on ${address}\n` +
      `  curl -s ${address}/v1/completions -H 'Content-Type: application/json'${auth} -d '{"prompt": "The", "max_tokens": 32, "temperature": 0}'\n` +
      `  inspector page: ${address}/\n`,
  );
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e) => {
    const msg = e instanceof MnemoError ? e.message : ((e as Error).stack ?? String(e));
    process.stderr.write(`mnemo-serve: ${msg}\n`);
    process.exit(1);
  },
);
