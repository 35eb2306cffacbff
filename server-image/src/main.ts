import { EXIT_CONFIG, loadConfig } from './load-config.js';
import { createLogger } from './logger.js';
import { relayHandlers } from './relay.js';
import { createServer } from './server.js';

/** Time left after the drain window for closing connections before the process must be gone. */
const CLOSE_MARGIN_MS = 5000;

/** The image's entrypoint: load config, run the relay, drain on SIGTERM. Returns the exit code. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`config: ${problem}\n`);
    return EXIT_CONFIG;
  }
  const { config } = loaded;
  const logger = createLogger(config.logLevel);
  logger.info(
    {
      source: loaded.source,
      redisAuth: loaded.redisPassword !== undefined,
      redisUser: loaded.redis.username ?? 'default',
      redisTls: loaded.redis.tls !== undefined,
      clientAuth: config.clientAuth,
    },
    'config loaded',
  );

  process.on('unhandledRejection', (reason) => {
    logger.error(
      { err: reason instanceof Error ? reason.message : String(reason) },
      'unhandled rejection',
    );
  });

  let server;
  try {
    server = await createServer(config, relayHandlers, {
      redisPassword: loaded.redisPassword,
      redisUsername: loaded.redis.username,
      redisTls: loaded.redis.tls,
      clientAuthKey: loaded.clientAuthKey,
      logger,
    });
  } catch (err) {
    logger.fatal(
      { err: err instanceof Error ? err.message : String(err) },
      'cannot start the server',
    );
    return 1;
  }
  const handle = server;

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals, drain: boolean): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, drain ? 'draining before exit' : 'closing');
      // The pod's grace period must exceed drainSeconds plus this margin (the operator enforces it).
      const deadline = setTimeout(
        () => {
          logger.warn('drain deadline passed; exiting');
          resolve(0);
        },
        (drain ? config.drainSeconds * 1000 : 0) + CLOSE_MARGIN_MS,
      );
      deadline.unref();
      (drain ? handle.drain() : Promise.resolve())
        .then(() => handle.close())
        .then(
          () => {
            clearTimeout(deadline);
            logger.info('closed');
            resolve(0);
          },
          (err: unknown) => {
            logger.error({ err: err instanceof Error ? err.message : String(err) }, 'close failed');
            resolve(1);
          },
        );
    };
    process.on('SIGTERM', () => stop('SIGTERM', true));
    process.on('SIGINT', () => stop('SIGINT', false));
  });
}
